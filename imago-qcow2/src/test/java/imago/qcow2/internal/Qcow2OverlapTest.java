package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.ToLongFunction;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Damaged images that point guest data at metadata: a write there must not happen. As QEMU's metadata
 * overlap check, imago marks the image corrupt and fails the write (the same words as qemu-io), and
 * nothing but the corrupt bit changes in the file.
 */
class Qcow2OverlapTest {
    @TempDir
    static Path dir;
    static int counter;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** An image with data at guest cluster 0 and a snapshot, whose L2 entry 0 then points at {@code target}. */
    private static Path damaged(String what, ToLongFunction<QcowBytes> target, boolean snapshot)
            throws IOException {
        Path img = dir.resolve("overlap" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 0 8k", "write -P 2 2M 4k"));
        if (snapshot) {
            Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
            // the active tables get their own copies again
            Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 3 0 4k"));
        }
        try (QcowBytes q = new QcowBytes(img)) {
            long host = target.applyAsLong(q);
            q.l2(0, QcowBytes.COPIED | host);
        }
        return img;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"active L1 table", "refcount table", "refcount block", "active L2 table", "inactive L1 table",
            "snapshot table"})
    void writesOntoMetadataMarkTheImageCorruptAsQemuDoes(String what) throws IOException {
        boolean snapshot = what.contains("inactive") || what.contains("snapshot");
        Path img = damaged(what, q -> {
            try {
                return switch (what) {
                    case "active L1 table" -> q.u64(40);
                    case "refcount table" -> q.u64(48);
                    case "refcount block" -> q.reftable(0);
                    // the L2 table of guest 2M's L1 entry is the same table here: use a second table
                    case "active L2 table" -> q.l1(0) & QcowBytes.OFFSET_MASK;
                    case "inactive L1 table" -> q.u64(q.snapshotEntry(0));
                    case "snapshot table" -> q.u64(64);
                    default -> 0;
                };
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, snapshot);
        Path theirs = dir.resolve("theirs" + counter++ + ".qcow2");
        Files.copy(img, theirs);
        byte[] before = Files.readAllBytes(img);
        Qemu.Output q = Qemu.run(dir, "qemu-io", "-c", "write -P 7 0 512", theirs);
        String qemuMessage = "Marking image as corrupt: Preventing invalid write on metadata (overlaps with " + what
                + "); further corruption events will be suppressed";
        assertTrue(q.err().contains(qemuMessage), () -> "qemu-io said: " + q.out() + q.err());
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            var e = assertThrows(CorruptImageException.class,
                    () -> image.write(ByteBuffer.wrap(new byte[512]), 0));
            assertTrue(e.getMessage().contains(qemuMessage), e.getMessage());
            // no further writes, anywhere
            assertThrows(CorruptImageException.class, () -> image.write(ByteBuffer.wrap(new byte[512]), 3L << 20));
        }
        byte[] after = Files.readAllBytes(img);
        assertEquals(1L << 1, ByteBuffer.wrap(after).getLong(72) & (1L << 1), "corrupt bit");
        ByteBuffer.wrap(after).putLong(72, ByteBuffer.wrap(before).getLong(72));
        assertArrayEquals(before, after, "only the corrupt bit changed");
        // both tools leave the same header fields
        assertEquals(ByteBuffer.wrap(Files.readAllBytes(theirs)).getLong(72),
                ByteBuffer.wrap(Files.readAllBytes(img)).getLong(72));
    }

    @org.junit.jupiter.api.Test
    void theCorruptBitOutlivesTheCloseOfALazyImage() throws IOException {
        Path img = dir.resolve("lazy-overlap.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,lazy_refcounts=on", img,
                "4M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 0 8k"));
        try (QcowBytes q = new QcowBytes(img)) {
            q.l2(0, QcowBytes.COPIED | q.u64(40));
        }
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            // allocating writes make the lazy image dirty first
            image.write(ByteBuffer.wrap(new byte[70_000]), 1L << 20);
            image.flush();
            assertThrows(CorruptImageException.class, () -> image.write(ByteBuffer.wrap(new byte[512]), 0));
        }
        long features = ByteBuffer.wrap(Files.readAllBytes(img)).getLong(72);
        assertEquals(1L << 1, features, "corrupt, and no longer dirty");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"L2", "L1", "refblock"})
    void metadataWithRefcountZeroRefusesWritableOpens(String what) throws IOException {
        Path img = dir.resolve("uncounted" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 0 8k"));
        try (QcowBytes q = new QcowBytes(img)) {
            long c = switch (what) {
                case "L2" -> (q.l1(0) & QcowBytes.OFFSET_MASK) >>> 12;
                case "L1" -> q.u64(40) >>> 12;
                default -> q.reftable(0) >>> 12;
            };
            q.refcount(c, 0);
        }
        byte[] before = Files.readAllBytes(img);
        var e = assertThrows(CorruptImageException.class,
                () -> Imago.opener().path(img).format("qcow2").writable(true).open());
        assertTrue(e.getMessage().contains("refcount 0") && e.getMessage().contains("check -r all"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(img));
        try (Image image = Imago.opener().path(img).format("qcow2").open()) {
            ByteBuffer b = ByteBuffer.allocate(8192);
            image.read(b, 0);
            byte[] ones = new byte[8192];
            Arrays.fill(ones, (byte) 1);
            assertArrayEquals(ones, b.array());
        }
    }
}
