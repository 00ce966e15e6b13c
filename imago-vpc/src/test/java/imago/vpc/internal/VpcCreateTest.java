package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.ImageLimitException;
import imago.api.Image;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.VhdiInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * New images are byte for byte what qemu-img 7.2 writes for the same size and options, once the time stamp and
 * the unique id (which differ by nature) are taken from qemu-img's image; qemu-img and libvhdi's vhdiinfo
 * accept them with the size they were made with.
 */
class VpcCreateTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /**
     * @param fixed fixed rather than dynamic
     * @param forceSize force_size=on
     * @param size the requested size
     */
    record Case(boolean fixed, boolean forceSize, long size) {
        String options() {
            return "subformat=" + (fixed ? "fixed" : "dynamic") + ",force_size=" + (forceSize ? "on" : "off");
        }

        @Override
        public String toString() {
            return options() + " " + size;
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        long[] sizes = {0, 1, 1000, 512 * 17 * 4, (24L << 20) + 7, 100L << 20, 127L << 30, 131L << 30};
        for (boolean fixed : new boolean[] {false, true}) {
            for (boolean force : new boolean[] {false, true}) {
                for (long s : sizes) {
                    out.add(new Case(fixed, force, s));
                }
            }
        }
        out.add(new Case(false, false, 2040L << 30)); // the largest, by current size
        out.add(new Case(false, true, 2040L << 30));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void createsWhatQemuImgCreates(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "-o", c.options(), "q.vhd", c.size());
        Path q = dir.resolve("q.vhd");
        long length = Files.size(q);
        // a fixed image is a sparse data area and the footer: compare the footer (the data area reads as zero)
        long from = c.fixed() ? length - 512 : 0;
        byte[] qemu = new byte[(int) (length - from)];
        try (var ch = Files.newByteChannel(q)) {
            ch.position(from).read(ByteBuffer.wrap(qemu));
        }
        ByteBuffer footer = ByteBuffer.wrap(qemu, qemu.length - 512, 512).slice();
        long timestamp = footer.getInt(24) & 0xFFFF_FFFFL;
        UUID id = VpcFields.uuid(footer, 68);

        String name = "create-" + NAMES.incrementAndGet();
        try (MemoryStorage s = MemoryStorage.create(name)) {
            VpcCreate.create(s, VpcCreate.plan(c.size(), c.forceSize()), c.fixed(), timestamp, id);
            assertEquals(length, s.size(), "file length");
            byte[] ours = new byte[qemu.length];
            s.read(ByteBuffer.wrap(ours), from);
            assertArrayEquals(qemu, ours);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** Through the driver (current time, random id): qemu-img and vhdiinfo see the size qemu-img would make. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void qemuImgAndVhdiinfoAcceptWhatTheDriverCreates(Case c, @TempDir Path dir) throws IOException {
        if (c.size() > (1L << 40)) {
            return; // the fixed cases cover a file per size already; 2 TiB sparse files are left out
        }
        Qemu.require();
        Path img = dir.resolve("i.vhd");
        Imago.create(img, "vpc", CreateOptions.builder().size(c.size()).option("subformat", c.fixed() ? "fixed" : "dynamic")
                .option("force_size", c.forceSize() ? "on" : "off").build());
        long expected = VpcCreate.plan(c.size(), c.forceSize()).size();
        if (!(c.fixed() && expected == 0)) { // qemu-img cannot open an empty fixed disk, its own either
            assertEquals(expected, QemuReads.qemuSize(dir, img, "vpc"));
        }
        if (expected > 0) { // vhdiinfo refuses empty disks, qemu-img's as well
            VhdiInfo.assertDisk(dir, img, expected, c.fixed());
        }
        try (Image image = Imago.opener().path(img).format("vpc").open()) {
            assertEquals(expected, image.size());
        }
    }

    /** Azure takes fixed VHDs of a whole number of MiB plus the footer: force_size keeps such a size as given. */
    @Test
    void fixedForceSizeImagesHaveTheSizeAzureAccepts(@TempDir Path dir) throws IOException {
        Qemu.require();
        for (long mib : new long[] {1, 100, 1025}) {
            Path img = dir.resolve(mib + ".vhd");
            Imago.create(img, "vpc", CreateOptions.builder().size(mib << 20).option("subformat", "fixed")
                    .option("force_size", "on").build());
            assertEquals((mib << 20) + 512, Files.size(img), "a whole number of MiB, plus the footer");
            byte[] tail = new byte[512];
            try (var ch = Files.newByteChannel(img)) {
                ch.position(Files.size(img) - 512).read(ByteBuffer.wrap(tail));
            }
            VpcFooter f = VpcFooter.parse(ByteBuffer.wrap(tail), img.toString(), 0);
            assertEquals(mib << 20, f.currentSize());
            assertEquals(VpcFields.TYPE_FIXED, f.diskType());
            assertEquals(mib << 20, QemuReads.qemuSize(dir, img, "vpc"));
        }
    }

    @Test
    void refusesWhatQemuImgRefuses() {
        var d = new VpcFormatDriver();
        try (MemoryStorage s = MemoryStorage.create("refuse-" + NAMES.incrementAndGet())) {
            assertEquals("The image size is too large for file format 'vpc' (at most 2040 GiB)", assertThrows(
                    ImageLimitException.class, () -> d.create(s, CreateOptions.ofSize(2041L << 30))).detail());
            assertEquals("Parameter 'subformat' does not accept value 'bogus'", assertThrows(
                    IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(1 << 20)
                            .option("subformat", "bogus").build())).getMessage());
            assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(1 << 20)
                    .option("cluster_size", "4096").build()));
            assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(1 << 20)
                    .backingFile("base.vhd").build()));
        }
    }
}
