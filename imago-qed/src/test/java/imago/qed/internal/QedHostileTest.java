package imago.qed.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.HostileImages;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hostile and damaged QED images built by the tests: each is refused with one specific exception that names the
 * file and the offset of the field at fault (QEMU's message where QEMU refuses too), in bounded time and memory.
 */
class QedHostileTest {
    private static final AtomicInteger NAMES = new AtomicInteger();
    private static final int CLUSTER = 4096;

    @TempDir
    Path dir;

    /** A valid image: 4 KiB clusters, two-cluster tables, 1 MiB, two data clusters written (L2 table at 24 KiB). */
    static byte[] valid() throws IOException {
        byte[] data = new byte[2 * CLUSTER];
        Arrays.fill(data, (byte) 0x5A);
        return HostileImages.created("qed", CreateOptions.builder().size(1 << 20).option("cluster_size", "4096")
                .option("table_size", "2").build(), data);
    }

    static byte[] patched(Consumer<ByteBuffer> patch) throws IOException {
        byte[] bytes = valid();
        patch.accept(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        return bytes;
    }

    /** Opens {@code bytes} as qed (writable or not), reads it all, and returns what it threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("qed", type, bytes, writable);
    }

    @Test
    void theValidImageOpens() throws IOException {
        String name = "qed-ok-" + NAMES.incrementAndGet();
        MemoryStorage.of(name, valid()).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).open()) {
            byte[] all = QemuReads.readAll(image);
            assertEquals(0x5A, all[CLUSTER]);
            assertEquals(0, all[2 * CLUSTER]);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void truncatedHeadersAreNotQed() throws IOException {
        for (int length : new int[] {0, 3, 10, 63}) {
            byte[] head = Arrays.copyOf(valid(), length);
            CorruptImageException e = refused(CorruptImageException.class, head, false);
            assertTrue(e.getMessage().contains("Image not in QED format") || e.getMessage().contains("is invalid"),
                    e.getMessage());
        }
        CorruptImageException cut = refused(CorruptImageException.class, Arrays.copyOf(valid(), 2 * CLUSTER), false);
        assertTrue(cut.getMessage().contains("QED table offset is invalid (at offset 40)"), cut.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 512, 4095, 4097, 3 << 12, 128 << 20, -4096})
    void absurdClusterSizesAreRefused(int size) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putInt(4, size)), false);
        assertTrue(e.getMessage().contains("QED cluster size is invalid (at offset 4)"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 32, -1})
    void absurdTableSizesAreRefused(int size) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putInt(8, size)), false);
        assertTrue(e.getMessage().contains("QED table size is invalid (at offset 8)"), e.getMessage());
    }

    @Test
    void aTableOfOneClusterIsRefusedAsQemuRefusesIt() throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putInt(8, 1)), false);
        assertTrue(e.getMessage().contains("QED table offset is invalid"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {1000, 1L << 40, Long.MAX_VALUE, -512})
    void absurdImageSizesAreRefused(long size) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(48, size)), false);
        assertTrue(e.getMessage().contains("QED image size is invalid (at offset 48)"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 100, 1 << 20, 1L << 40, -4096})
    void l1TablesOutsideTheFileAreRefused(long offset) throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(40, offset)), false);
        assertTrue(e.getMessage().contains("QED table offset is invalid (at offset 40)"), e.getMessage());
    }

    /** The L1 table then lies inside the header, which QEMU finds first (so "header size is too large" never shows). */
    @Test
    void hugeHeaderSizesAreRefused() throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putInt(12, 0x20_0000)), false);
        assertTrue(e.getMessage().contains("QED table offset is invalid (at offset 40)"), e.getMessage());
    }

    @Test
    void unknownFeaturesAreRefused() throws IOException {
        UnsupportedFeatureException e = refused(UnsupportedFeatureException.class, patched(b -> b.putLong(16, 0x100)),
                false);
        assertTrue(e.getMessage().contains("Unsupported QED features: 100"), e.getMessage());
    }

    @Test
    void backingNamesOutsideTheHeaderAreRefused() throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(16, 1).putInt(56, 4000)
                .putInt(60, 200)), false);
        assertTrue(e.getMessage().contains("QED backing filename offset is invalid (at offset 56)"), e.getMessage());
        CorruptImageException notText = refused(CorruptImageException.class, patched(b -> b.putLong(16, 1)
                .putInt(56, 64).putInt(60, 3).put(64, (byte) 0xC3).put(65, (byte) 0x28)), false);
        assertTrue(notText.getMessage().contains("not UTF-8 (at offset 64)"), notText.getMessage());
    }

    @Test
    void l1EntriesPastTheEndOfTheFileAreRefused() throws IOException {
        CorruptImageException e = refused(CorruptImageException.class, patched(b -> b.putLong(CLUSTER, 1L << 40)),
                false);
        assertTrue(e.getMessage().contains("(at offset 4096)"), e.getMessage());
        CorruptImageException unaligned = refused(CorruptImageException.class, patched(b -> b.putLong(CLUSTER,
                b.getLong(CLUSTER) + 8)), true);
        assertTrue(unaligned.getMessage().contains("(at offset 4096)"), unaligned.getMessage());
    }

    @Test
    void l2EntriesPastTheEndOfTheFileOrOffClustersAreRefused() throws IOException {
        for (long bad : new long[] {1L << 40, 4097, 2, 0x8000_0000_0000_0000L}) {
            CorruptImageException e = refused(CorruptImageException.class, patched(b -> {
                long l2 = b.getLong(CLUSTER);
                b.putLong((int) l2 + 8, bad);
            }), false);
            assertTrue(e.getMessage().contains("L2 entry") && e.getMessage().contains("(at offset "), e.getMessage());
        }
    }

    @Test
    void tablesPastImagosLimitAreRefusedWithoutAllocatingThem() throws IOException {
        String name = "qed-huge-" + NAMES.incrementAndGet();
        MemoryStorage s = MemoryStorage.create(name);
        try {
            ByteBuffer h = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(QedHeader.MAGIC).putInt(64 << 20).putInt(16).putInt(1).putLong(0).putLong(0).putLong(0)
                    .putLong(64L << 20).putLong(1L << 30);
            s.write(h.flip(), 0);
            s.resize(18L * (64 << 20), imago.api.Preallocation.OFF);
            s.close();
            ImageLimitException e = assertThrows(ImageLimitException.class,
                    () -> Imago.opener().location(StorageLocation.memory(name)).open());
            assertTrue(e.getMessage().contains(name), e.getMessage());
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"/etc/passwd", "../../etc/passwd", "/dev/zero", "sub/../../outside.raw"})
    void confinedRefusesBackingNamesOutsideTheDirectory(String backing) throws IOException {
        Path image = dir.resolve("evil.qed");
        Imago.create(image, "qed", CreateOptions.builder().size(1 << 20).backingFile(backing).backingFormat("raw")
                .build());
        OpenDeniedException e = assertThrows(OpenDeniedException.class,
                () -> Imago.opener().path(image).gate(OpenGate.confinedTo(dir)).open());
        assertTrue(e.getMessage().contains(backing), e.getMessage());
        assertTrue(Files.size(image) > 0);
    }
}
