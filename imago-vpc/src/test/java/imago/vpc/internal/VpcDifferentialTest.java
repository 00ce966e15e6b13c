package imago.vpc.internal;

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
class VpcDifferentialTest {

    /**
     * One image: its create options and size.
     *
     * @param options the {@code -o} options
     * @param size the requested size
     */
    record Case(String options, long size) {
        @Override
        public String toString() {
            return (options.isEmpty() ? "dynamic" : options) + " " + size;
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (String o : List.of("", "force_size=on", "subformat=fixed", "subformat=fixed,force_size=on")) {
            out.add(new Case(o, 24L << 20));
            out.add(new Case(o, (9L << 20) + 3 * 512 + 100)); // neither a whole geometry nor a whole sector
        }
        out.add(new Case("", 1000));
        out.add(new Case("subformat=fixed", 1));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void readsAndMapsLikeQemu(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        QemuWorkloads.create(dir, "vpc", c.options(), "img.vhd", c.size());
        long size = QemuReads.qemuSize(dir, dir.resolve("img.vhd"), "vpc");
        QemuWorkloads.qemuWritesSample(dir, "vpc", "img.vhd", size);
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vhd"), "vpc");
    }

    /** Seeded random qemu-io workloads on dynamic disks of several sizes. */
    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 4})
    void randomWorkloadsReadAndMapLikeQemu(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Random r = new Random(seed);
        long requested = (8L << 20) + 512L * r.nextInt(20_000);
        QemuWorkloads.create(dir, "vpc", r.nextBoolean() ? "force_size=on" : "force_size=off", "img.vhd", requested);
        long size = QemuReads.qemuSize(dir, dir.resolve("img.vhd"), "vpc");
        QemuReads.qemuIo(dir, "vpc", "img.vhd", QemuWorkloads.randomWrites(r, size, 30, 2048));
        QemuReads.assertReadsLikeQemu(dir, dir.resolve("img.vhd"), "vpc");
    }
}
