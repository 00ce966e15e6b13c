package imago.parallels.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.HostileImages;
import imago.testkit.QemuReads;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Hostile and damaged Parallels images built by the test: each is refused with one specific exception naming the
 * file and the offset of the field at fault, in bounded time and memory.
 */
class ParallelsHostileTest {
    private static final int CLUSTER = 4096;

    /** A valid image: 4 clusters of 4 KiB, the catalog in cluster 0, cluster 2 of the disk at file cluster 1. */
    static byte[] valid() {
        ByteBuffer b = ByteBuffer.allocate(2 * CLUSTER).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, ParallelsHeader.create(4 * CLUSTER, CLUSTER, 4, CLUSTER / 512), 0, ParallelsHeader.LENGTH);
        b.putInt(64 + 2 * 4, 1);
        Arrays.fill(b.array(), CLUSTER, 2 * CLUSTER, (byte) 0x5A);
        return b.array();
    }

    static byte[] with(Consumer<ByteBuffer> damage) {
        return HostileImages.littleEndian(valid(), damage);
    }

    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("parallels", type, bytes, writable);
    }

    @Test
    void theValidImageReadsAndWrites() throws Exception {
        String name = "hostile-parallels-valid";
        MemoryStorage.of(name, valid()).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).format("parallels").writable(true)
                .open()) {
            byte[] all = QemuReads.readAll(image);
            assertEquals(0, all[0]);
            assertEquals(0x5A, all[2 * CLUSTER]);
            image.write(ByteBuffer.wrap(new byte[] {1}), 0);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void truncatedHeadersAndWrongMagics() {
        // a header cut short reads on as zeroes, as in QEMU: no magic, then no version
        for (int length : new int[] {0, 16}) {
            refused(CorruptImageException.class, Arrays.copyOf(valid(), length), false);
        }
        assertEquals(0, refused(CorruptImageException.class, with(b -> b.put(3, (byte) 'X')), false).offset()
                .orElseThrow());
        assertEquals(16, refused(CorruptImageException.class, with(b -> b.putInt(16, 3)), false).offset()
                .orElseThrow());
    }

    @Test
    void zeroAndHugeClusters() {
        assertTrue(refused(CorruptImageException.class, with(b -> b.putInt(28, 0)), false).getMessage()
                .contains("Zero sectors per track"));
        assertTrue(refused(ImageLimitException.class, with(b -> b.putInt(28, -1)), false).getMessage()
                .contains("Too big cluster"));
    }

    @Test
    void absurdCatalogsAndSizes() {
        assertTrue(refused(ImageLimitException.class, with(b -> b.putInt(32, -1)), false).getMessage()
                .contains("Catalog too large"));
        refused(ImageLimitException.class, with(b -> b.putInt(32, 0x1fff_ffff)), false);
        refused(ImageLimitException.class, with(b -> b.putLong(36, Long.MAX_VALUE)), false);
        refused(ImageLimitException.class, with(b -> b.putLong(36, -1)), false);
    }

    @Test
    void clustersPastTheEndReadAsZeroes() throws Exception {
        // a file cut short: the cluster past its end reads as zeroes, as QEMU reads it
        byte[] all = HostileImages.accepted("parallels", with(b -> b.putInt(64 + 8, 2)), false);
        assertEquals(0, all[2 * CLUSTER]);
    }

    @Test
    void formatExtensions() {
        byte[] past = with(b -> b.putLong(56, 1000));
        assertEquals(56, refused(CorruptImageException.class, past, false).offset().orElseThrow());
        byte[] wrongMagic = HostileImages.littleEndian(Arrays.copyOf(valid(), 3 * CLUSTER),
                b -> b.putLong(56, 2 * CLUSTER / 512));
        assertTrue(refused(CorruptImageException.class, wrongMagic, false).getMessage()
                .contains("Wrong parallels Format Extension magic: 0x0"));
        assertTrue(refused(CorruptImageException.class, extended(new byte[0], false), false).getMessage()
                .contains("Wrong checksum"));
        ByteBuffer unknown = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 0x1234).putInt(16, 8);
        assertTrue(refused(UnsupportedFeatureException.class, extended(unknown.array(), true), false).getMessage()
                .contains("Unknown feature: 0x1234"));
        ByteBuffer outOf = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putLong(0, ParallelsExtension
                .DIRTY_BITMAP).putInt(16, 1 << 20);
        assertTrue(refused(CorruptImageException.class, extended(outOf.array(), true), false).getMessage()
                .contains("feature data out of cluster"));
    }

    private static byte[] extended(byte[] features, boolean rightSum) {
        byte[] b = Arrays.copyOf(valid(), 3 * CLUSTER);
        System.arraycopy(ParallelsTestImages.extension(CLUSTER, features, rightSum), 0, b, 2 * CLUSTER, CLUSTER);
        return HostileImages.littleEndian(b, x -> x.putLong(56, 2 * CLUSTER / 512));
    }

    @Test
    void writableOpensRefuseDirtyAndOverlappingImages() {
        assertTrue(refused(CorruptImageException.class, with(b -> b.putInt(44, ParallelsHeader.IN_USE)), true)
                .getMessage().contains("Image was not closed correctly; cannot be opened read/write"));
        // the old magic counts sectors: clusters at sectors 1 and 8 overlap by 512 bytes
        byte[] overlapping = with(b -> b.put(0, ParallelsHeader.MAGIC).putInt(64, 1).putInt(64 + 8, 8));
        assertEquals(CLUSTER, refused(CorruptImageException.class, overlapping, true).offset().orElseThrow());
        byte[] twice = with(b -> b.putInt(64 + 4, 1));
        assertEquals(CLUSTER, refused(CorruptImageException.class, twice, true).offset().orElseThrow());
    }
}
