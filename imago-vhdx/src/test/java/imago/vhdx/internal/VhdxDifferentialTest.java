package imago.vhdx.internal;

import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Images qemu-img and qemu-io write read in imago byte for byte as {@code qemu-img convert} reads them, with the
 * virtual size {@code qemu-img info} shows and the extents {@code qemu-img map} shows.
 */
class VhdxDifferentialTest {

    /**
     * One image: its create options and size.
     *
     * @param options the {@code -o} options
     * @param size the requested size
     */
    record Case(String options, long size) {
        @Override
        public String toString() {
            return (options.isEmpty() ? "default" : options) + " " + size;
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (String o : List.of("", "block_state_zero=off", "block_size=1M,log_size=2M", "subformat=fixed",
                "subformat=fixed,block_state_zero=off,block_size=2M")) {
            out.add(new Case(o, 24L << 20));
            out.add(new Case(o, (9L << 20) + 3 * 512 + 100)); // not a whole block, nor a whole sector
        }
        out.add(new Case("block_size=1M", 1000));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void readsAndMapsLikeQemu(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        QemuWorkloads.create(dir, "vhdx", c.options(), "img.vhdx", c.size());
        long size = QemuReads.qemuSize(dir, dir.resolve("img.vhdx"), "vhdx");
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vhdx"), "vhdx");
        QemuWorkloads.qemuWritesSample(dir, "vhdx", "img.vhdx", size);
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vhdx"), "vhdx");
    }

    /** Seeded random qemu-io workloads on dynamic disks of several sizes and block sizes. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void randomWorkloadsReadAndMapLikeQemu(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Random r = new Random(seed);
        long requested = (8L << 20) + 512L * r.nextInt(20_000);
        QemuWorkloads.create(dir, "vhdx", "block_size=" + (1 << r.nextInt(3)) + "M", "img.vhdx", requested);
        long size = QemuReads.qemuSize(dir, dir.resolve("img.vhdx"), "vhdx");
        QemuReads.qemuIo(dir, "vhdx", "img.vhdx", QemuWorkloads.randomWrites(r, size, 20, 2048));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vhdx"), "vhdx");
    }
}
