package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.testkit.HostileImages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.UUID;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Hostile and damaged VDI images built by the test: each is refused with one specific exception naming the file
 * and the offset of the field at fault, in bounded time and memory.
 */
class VdiHostileTest {

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
        return HostileImages.littleEndian(valid(), damage);
    }

    /** Opens {@code bytes} as vdi and reads it all; returns what that threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("vdi", type, bytes, writable);
    }

    @Test
    void theValidImageReads() throws Exception {
        byte[] all = HostileImages.accepted("vdi", valid(), false);
        assertEquals(0, all[0]);
        assertEquals(0x5A, all[1 << 20]);
        assertEquals(0, all[2 << 20]);
    }

    @Test
    void truncatedHeaders() throws IOException {
        // a header cut short reads on as zeroes, as in QEMU, and is refused for what is then missing
        for (int length : new int[] {0, 64}) {
            CorruptImageException e = refused(CorruptImageException.class, Arrays.copyOf(valid(), length), false);
            assertEquals(0x40, e.offset().orElseThrow(), e.getMessage());
        }
        UnsupportedFeatureException sizes = refused(UnsupportedFeatureException.class,
                Arrays.copyOf(valid(), 0x180), false);
        assertTrue(sizes.getMessage().contains("image bitmap has room for 0"), sizes.getMessage());
        // cut inside the map: block 1's entry reads as 0, block 0 (which is past the end, so zeroes)
        byte[] all = HostileImages.accepted("vdi", Arrays.copyOf(valid(), 516), false);
        assertEquals(0, all[1 << 20]);
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
        refused(ImageLimitException.class, with(b -> b.putInt(0x180, 0x1fff_ff80)), false);
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putInt(0x180, 0x1fff_ff81)
                .putLong(0x170, 1 << 20)), false).getMessage().contains("too many blocks"));
        // a disk size past what any map can hold, and past the map it has
        refused(ImageLimitException.class, with(b -> b.putLong(0x170, Long.MAX_VALUE)), false);
        refused(ImageLimitException.class, with(b -> b.putLong(0x170, -512)), false);
        assertTrue(refused(UnsupportedFeatureException.class, with(b -> b.putLong(0x170, 4L << 20)), false)
                .getMessage().contains("image bitmap has room for"));
    }

    @Test
    void tablesAndBlocksPastTheEnd() throws IOException {
        // a file cut short: a map past its end reads as zeroes (every entry names block 0, as in QEMU), which a
        // writable open refuses
        byte[] longMap = with(b -> b.putInt(0x180, 1 << 20).putLong(0x170, 1L << 40));
        assertTrue(refused(CorruptImageException.class, longMap, true).getMessage().contains("another entry"));
        byte[] farMap = with(b -> b.putInt(0x154, 0x1000_0000));
        assertEquals(0x5A, HostileImages.accepted("vdi", farMap, false)[1 << 20]);
        assertTrue(refused(CorruptImageException.class, farMap, true).getMessage().contains("another entry"));
        // an entry naming a block past the end, and data offsets past it: zeroes, as QEMU reads them
        assertEquals(0, HostileImages.accepted("vdi", with(b -> b.putInt(516, 7)), false)[1 << 20]);
        assertEquals(0, HostileImages.accepted("vdi", with(b -> b.putInt(0x158, 0x1000_0000)), false)[1 << 20]);
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
        try {
            assertEquals(0x5A, HostileImages.accepted("vdi", shared, false)[0]);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        assertEquals(516, refused(CorruptImageException.class, shared, true).offset().orElseThrow());
    }
}
