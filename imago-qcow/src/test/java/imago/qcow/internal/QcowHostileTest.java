package imago.qcow.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.Qemu;
import imago.testkit.HostileImages;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hostile and damaged qcow images built by the tests: each is refused with one specific exception that names the
 * file and the offset of the field at fault (QEMU's message where QEMU refuses too), in bounded time and memory;
 * encrypted images are refused, never read as plain text.
 */
class QcowHostileTest {
    private static final AtomicInteger NAMES = new AtomicInteger();
    private static final int CLUSTER = 4096;
    /** Where qemu-img's layout puts the first L2 table of a new image (L1 at 48, one sector long). */
    private static final int L2_AT = 4096;

    @TempDir
    Path dir;

    /** A valid image: 1 MiB, qemu-img's layout, two data clusters written at 0 (L2 table at 4096, data at 8192). */
    static byte[] valid() throws IOException {
        byte[] data = new byte[2 * CLUSTER];
        Arrays.fill(data, (byte) 0x5A);
        return HostileImages.created("qcow", CreateOptions.builder().size(1 << 20).build(), data);
    }

    static byte[] patched(Consumer<ByteBuffer> patch) throws IOException {
        byte[] bytes = valid();
        ByteBuffer b = ByteBuffer.wrap(bytes);
        patch.accept(b);
        return Arrays.copyOf(b.array(), Math.max(bytes.length, b.limit()));
    }

    /** Opens {@code bytes} as qcow (writable or not), reads it all, and returns what it threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("qcow", type, bytes, writable);
    }

    @Test
    void theValidImageOpensWithQemuImgsLayout() throws IOException {
        byte[] bytes = valid();
        assertEquals(L2_AT, ByteBuffer.wrap(bytes).getLong(48), "the first L1 entry");
        assertEquals(2 * CLUSTER, ByteBuffer.wrap(bytes).getLong(L2_AT), "the first L2 entry");
    }

    @Test
    void truncatedHeadersAreNotQcow() throws IOException {
        for (int length : new int[] {0, 3}) {
            CorruptImageException e = refused(CorruptImageException.class, Arrays.copyOf(valid(), length), false);
            assertTrue(e.getMessage().contains("Image not in qcow format (at offset 0)"), e.getMessage());
        }
        CorruptImageException e = refused(CorruptImageException.class, Arrays.copyOf(valid(), 30), false);
        assertTrue(e.getMessage().contains("Cluster size must be between 512 and 64k"), e.getMessage());
        CorruptImageException l1 = refused(CorruptImageException.class, Arrays.copyOf(valid(), 52), false);
        assertTrue(l1.getMessage().contains("L1 table") && l1.getMessage().contains("(at offset 40)"),
                l1.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 0})
    void otherVersionsAreRefused(int version) throws IOException {
        UnsupportedFeatureException e = refused(UnsupportedFeatureException.class, patched(b -> b.putInt(4, version)),
                false);
        assertEquals(Feature.FORMAT_VERSION, e.feature());
        assertTrue(e.getMessage().contains("does not support qcow version " + version), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 8, 17, 255})
    void absurdClusterSizesAreRefused(int bits) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.put(32, (byte) bits)), false);
        assertTrue(e.getMessage().contains("Cluster size must be between 512 and 64k (at offset 32)"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 5, 14, 200})
    void absurdTableSizesAreRefused(int bits) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.put(33, (byte) bits)), false);
        assertTrue(e.getMessage().contains("L2 table size must be between 512 and 64k (at offset 33)"),
                e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 1, -1, Long.MAX_VALUE})
    void absurdSizesAreRefused(long size) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(24, size)), false);
        assertTrue(e.getMessage().contains("(at offset 24)"), e.getMessage());
    }

    @Test
    void sizesNeedingHugeL1TablesAreRefusedWithoutAllocatingThem() throws IOException {
        ImageLimitException e = refused(ImageLimitException.class, patched(b -> b.putLong(24, 1L << 60)), false);
        assertTrue(e.getMessage().contains("L1 table"), e.getMessage());
    }

    @Test
    void aesEncryptedImagesAreRefusedNeverReadAsPlainText() throws IOException {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow", "--object", "secret,id=sec0,data=123456", "-o",
                "encrypt.format=aes,encrypt.key-secret=sec0", "aes.qcow", "1M");
        UnsupportedFeatureException e = refused(UnsupportedFeatureException.class,
                Files.readAllBytes(dir.resolve("aes.qcow")), false);
        assertEquals(Feature.ENCRYPTION, e.feature());
        CorruptImageException other = refused(CorruptImageException.class, patched(b -> b.putInt(36, 2)), false);
        assertTrue(other.getMessage().contains("invalid encryption method in qcow header (at offset 36)"),
                other.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {10, -8})
    void l1EntriesNamingTablesOutsideTheFileAreRefused(long offset) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(48, offset)), false);
        assertTrue(e.getMessage().contains("L1 entry 0") && e.getMessage().contains("(at offset 48)"),
                e.getMessage());
    }

    /** A file cut short: an L2 table past its end reads as zeroes, as QEMU reads it, but is not written to. */
    @ParameterizedTest
    @ValueSource(longs = {1L << 40, 1 << 20})
    void l2TablesPastTheEndReadAsZeroesButAreNotWritten(long offset) throws IOException {
        byte[] bytes = patched(b -> b.putLong(48, offset));
        byte[] read = HostileImages.accepted("qcow", bytes, false);
        assertTrue(java.util.stream.IntStream.range(0, 1 << 16).allMatch(i -> read[i] == 0), "L1 entry 0 reads zeroes");
        CorruptImageException e = refused(CorruptImageException.class, bytes, true);
        assertTrue(e.getMessage().contains("L1 entry 0") && e.getMessage().contains("(at offset 48)"),
                e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {1L << 40, 4097, 100, 0x7000_0000_0000_0000L})
    void l2EntriesOutsideTheFileOrOffSectorsAreRefused(long entry) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(L2_AT + 8, entry)),
                true);
        assertTrue(e.getMessage().contains("L2 entry") && e.getMessage().contains("(at offset " + (L2_AT + 8) + ")"),
                e.getMessage());
    }

    /** A compressed cluster of {@code data} deflated, appended at the end, named by the second L2 entry. */
    private static byte[] withCompressed(byte[] data, int claimedLength) throws IOException {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setInput(data);
        d.finish();
        byte[] out = new byte[data.length + 1024];
        int n = d.deflate(out);
        d.end();
        byte[] image = valid();
        byte[] bytes = Arrays.copyOf(image, image.length + n);
        System.arraycopy(out, 0, bytes, image.length, n);
        int length = claimedLength < 0 ? n : claimedLength;
        long entry = (1L << 63) | ((long) length << (63 - 12)) | image.length;
        ByteBuffer.wrap(bytes).putLong(L2_AT + 8, entry);
        return bytes;
    }

    @Test
    void aValidCompressedClusterReads() throws IOException {
        byte[] cluster = new byte[CLUSTER];
        Arrays.fill(cluster, 100, 3000, (byte) 9);
        String name = "qcow-compressed-" + NAMES.incrementAndGet();
        MemoryStorage.of(name, withCompressed(cluster, -1)).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).open()) {
            byte[] all = QemuReads.readAll(image);
            assertTrue(Arrays.equals(cluster, Arrays.copyOfRange(all, CLUSTER, 2 * CLUSTER)));
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void compressedClustersThatInflatePastOrShortOfAClusterAreRefused() throws IOException {
        for (int size : new int[] {CLUSTER * 64, CLUSTER - 1, 10}) {
            CorruptImageException e = refused(CorruptImageException.class, withCompressed(new byte[size], -1), false);
            assertTrue(e.getMessage().contains("inflates") && e.getMessage().contains("(at offset " + (L2_AT + 8)),
                    e.getMessage());
        }
        CorruptImageException garbage = refused(CorruptImageException.class, patched(b -> b.putLong(L2_AT + 8,
                (1L << 63) | (100L << 51) | 100)), false);
        assertTrue(garbage.getMessage().contains("(at offset " + (L2_AT + 8)), garbage.getMessage());
        CorruptImageException past = refused(CorruptImageException.class, withCompressed(new byte[CLUSTER], 4000),
                false);
        assertTrue(past.getMessage().contains("outside the file"), past.getMessage());
    }

    @Test
    void backingNamesTooLongOrOutsideTheFileAreRefused() throws IOException {
        CorruptImageException tooLong = refused(CorruptImageException.class, patched(b -> b.putLong(8, 48)
                .putInt(16, 5000)), false);
        assertTrue(tooLong.getMessage().contains("Backing file name too long (at offset 16)"), tooLong.getMessage());
        CorruptImageException past = refused(CorruptImageException.class, patched(b -> b.putLong(8, 1L << 40)
                .putInt(16, 10)), false);
        assertTrue(past.getMessage().contains("(at offset 8)"), past.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"/etc/passwd", "../../etc/passwd", "/dev/zero", "sub/../../outside.raw"})
    void confinedRefusesBackingNamesOutsideTheDirectory(String backing) throws IOException {
        Path image = dir.resolve("evil.qcow");
        Imago.create(image, "qcow", CreateOptions.builder().size(1 << 20).backingFile(backing).backingFormat("raw")
                .build());
        OpenDeniedException e = assertThrows(OpenDeniedException.class,
                () -> Imago.opener().path(image).gate(OpenGate.confinedTo(dir)).open());
        assertTrue(e.getMessage().contains(backing), e.getMessage());
    }

    /** qemu-img rounds a size up to a sector before its check, so only 0 is refused, in its words. */
    @Test
    void createRefusesOnlyAZeroSize() throws IOException {
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> Imago.create(dir.resolve("zero.qcow"), "qcow", CreateOptions.builder().size(0).build()));
        assertEquals("Image size is too small, cannot be zero length", zero.getMessage());
        Imago.create(dir.resolve("one.qcow"), "qcow", CreateOptions.builder().size(1).build());
        try (Image image = Imago.opener().path(dir.resolve("one.qcow")).open()) {
            assertEquals(512, image.size());
        }
    }
}
