package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.QemuReads;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Hostile and damaged VDI images built by the test: each is refused with one specific exception naming the file
 * and the offset of the field at fault, in bounded time and memory.
 */
class VdiHostileTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /** A valid dynamic image of 3 MiB with block 1 allocated (as index 0), to damage. */
    static byte[] valid() {
        byte[] header = VdiHeader.create(false, 3 << 20, 3, 1024, UUID.randomUUID(), UUID.randomUUID());
        ByteBuffer file = ByteBuffer.allocate(1024 + (1 << 20)).order(ByteOrder.LITTLE_ENDIAN);
        file.put(0, header);
        file.putInt(VdiHeader.BLOCKS_ALLOCATED_AT, 1);
        file.putInt(512, VdiHeader.UNALLOCATED).putInt(516, 0).putInt(520, VdiHeader.ZERO);
        Arrays.fill(file.array(), 1024, file.capacity(), (byte) 0x5A);
        return file.array();
    }

    static byte[] with(Consumer<ByteBuffer> damage) {
        return with(valid(), damage);
    }

    static byte[] with(byte[] bytes, Consumer<ByteBuffer> damage) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        damage.accept(b);
        return b.array();
    }

    /** Opens {@code bytes} as vdi and reads it all; returns what that threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        String name = "hostile-vdi-" + NAMES.incrementAndGet();
        MemoryStorage.of(name, bytes).close();
        try {
            T e = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThrows(type, () -> {
                try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("vdi")
                        .writable(writable).open()) {
                    QemuReads.readAll(image);
                }
            }));
            assertTrue(e.getMessage().contains(name), () -> "names the file: " + e.getMessage());
            return e;
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void theValidImageReads() throws Exception {
        String name = "hostile-vdi-valid";
        MemoryStorage.of(name, valid()).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("vdi").open()) {
            byte[] all = QemuReads.readAll(image);
            assertEquals(0, all[0]);
            assertEquals(0x5A, all[1 << 20]);
            assertEquals(0, all[2 << 20]);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void truncatedHeaders() {
        for (int length : new int[] {0, 64, 0x180, 511}) {
            CorruptImageException e = refused(CorruptImageException.class, Arrays.copyOf(valid(), length), false);
            assertEquals(length, e.offset().orElseThrow(), e.getMessage());
        }
    }

    @Test
    void badSignatureAndVersion() {
        assertEquals(0x40, refused(CorruptImageException.class, with(b -> b.putInt(0x40, 0x12345678)), false)
                .offset().orElseThrow());
        UnsupportedFeatureException v = refused(UnsupportedFeatureException.class,
                with(b -> b.putInt(0x44, 0x00010000)), false);
        assertTrue(v.getMessage().contains("version 1.0"), v.getMessage());
    }

    @Test
    void zeroHugeAndOddBlockSizes() {
        for (int size : new int[] {0, 512, 0x7fff_ffff, -1, (1 << 20) + 1}) {
            UnsupportedFeatureException e = refused(UnsupportedFeatureException.class,
                    with(b -> b.putInt(0x178, size)), false);
            assertTrue(e.getMessage().contains("block size"), e.getMessage());
        }
    }

    @Test
    void absurdBlockCountsAndSizes() {
        // more blocks than QEMU allows
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putInt(0x180, 0x4000_0000)
                .putLong(0x170, 1 << 20)), false).getMessage().contains("too many blocks"));
        // allowed by QEMU, but a map of 64 Mi entries is past imago's limit
        refused(ImageLimitException.class, with(b -> b.putInt(0x180, 0x3fff_ffff)), false);
        // a disk size past what any map can hold, and past the map it has
        refused(ImageLimitException.class, with(b -> b.putLong(0x170, Long.MAX_VALUE)), false);
        refused(ImageLimitException.class, with(b -> b.putLong(0x170, -512)), false);
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putLong(0x170, 4L << 20)), false)
                .getMessage().contains("image bitmap has room for"));
    }

    @Test
    void tablesAndBlocksPastTheEnd() {
        // the map: 1000 entries at 512 do not fit in the file
        CorruptImageException map = refused(CorruptImageException.class, with(b -> b.putInt(0x180, 1 << 20)
                .putLong(0x170, 1L << 40)), false);
        assertEquals(512, map.offset().orElseThrow());
        refused(CorruptImageException.class, with(b -> b.putInt(0x154, 0x7fff_fe00)), false);
        // an entry naming a block past the end, and data offsets past it
        assertEquals(516, refused(CorruptImageException.class, with(b -> b.putInt(516, 7)), false)
                .offset().orElseThrow());
        assertEquals(516, refused(CorruptImageException.class, with(b -> b.putInt(0x158, 0xffff_fe00)), false)
                .offset().orElseThrow());
    }

    @Test
    void unalignedOffsetsAndSectorSizes() {
        refused(UnsupportedFeatureException.class, with(b -> b.putInt(0x154, 513)), false);
        refused(UnsupportedFeatureException.class, with(b -> b.putInt(0x158, 1025)), false);
        refused(UnsupportedFeatureException.class, with(b -> b.putInt(0x168, 4096)), false);
    }

    @Test
    void differencingImagesAreRefused() {
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putLong(VdiHeader.UUID_PARENT_AT, 1)), false)
                .getMessage().contains("parent UUID"));
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putLong(VdiHeader.UUID_LINK_AT, 1)), false)
                .getMessage().contains("link UUID"));
    }

    @Test
    void sharedOrOutOfRangeBlocksAreNotWritten() {
        // entries 0 and 1 name block 0: reads work (as in QEMU), writes are refused
        byte[] shared = with(b -> b.putInt(512, 0));
        String name = "hostile-vdi-shared";
        MemoryStorage.of(name, shared).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("vdi").open()) {
            assertEquals(0x5A, QemuReads.readAll(image)[0]);
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            MemoryStorage.delete(name);
        }
        assertEquals(516, refused(CorruptImageException.class, shared, true).offset().orElseThrow());
    }
}
