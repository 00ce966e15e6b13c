package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Hostile sparse images, built byte by byte: every header limit, every pointer past the end, damaged compressed
 * grains. Each is a specific exception naming the file and the offset, in bounded time and memory.
 */
class VmdkHostileTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    private static String store(byte[] image) {
        String name = "hostile-" + NAMES.incrementAndGet() + ".vmdk";
        MemoryStorage.of(name, image).close();
        return name;
    }

    private static Image open(String name, boolean writable) throws IOException {
        return Imago.opener().location(StorageLocation.memory(name)).format("vmdk").writable(writable).open();
    }

    private static byte[] readAll(String name) throws IOException {
        try (Image i = open(name, false)) {
            ByteBuffer b = ByteBuffer.allocate((int) i.size());
            i.read(b, 0);
            return b.array();
        }
    }

    /** Opening (and reading everything) fails with {@code type}, naming the file and {@code offset}. */
    private static <T extends ImageException> T refused(Class<T> type, Consumer<VmdkImages> change, long offset) {
        VmdkImages b = VmdkImages.sparse();
        change.accept(b);
        String name = store(b.build());
        try {
            T e = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(type, () -> readAll(name)));
            assertTrue(e.getMessage().startsWith("memory:" + name + ": "), e.getMessage());
            if (offset >= 0) {
                assertEquals(offset, e.offset().orElse(-1), e.getMessage());
            }
            return e;
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void theBuilderMakesAValidImage() throws IOException {
        byte[] grain = new byte[64 << 10];
        Arrays.fill(grain, (byte) 5);
        String name = store(VmdkImages.sparse().at(128, grain).build());
        try {
            assertArrayEquals(new byte[1 << 20], readAll(name));
        } finally {
            MemoryStorage.delete(name);
        }
        VmdkImages b = VmdkImages.sparse().at(128, grain);
        b.gtes = new int[] {0, 128};
        String mapped = store(b.build());
        try {
            byte[] all = readAll(mapped);
            assertEquals(0, all[0]);
            assertEquals(5, all[64 << 10]);
        } finally {
            MemoryStorage.delete(mapped);
        }
    }

    @Test
    void truncatedHeader() {
        // the header cut short reads on as zeroes, as in QEMU, and the file is then shorter than its first grain
        CorruptImageException e = refused(CorruptImageException.class, b -> b.length = 300, 64);
        assertTrue(e.getMessage().contains("File truncated, expecting at least"), e.getMessage());
    }

    @Test
    void absurdGrainSizes() {
        refused(CorruptImageException.class, b -> b.grainSize = 0, 20);
        refused(ImageLimitException.class, b -> b.grainSize = 0x200001, 20);
        refused(ImageLimitException.class, b -> b.grainSize = Long.MAX_VALUE, 20);
        refused(CorruptImageException.class, b -> b.gtesPerGt = 0, 20);
        refused(ImageLimitException.class, b -> b.gtesPerGt = 513, 44);
        refused(ImageLimitException.class, b -> b.gtesPerGt = -1, 44);
    }

    @Test
    void capacityPast2To63() {
        ImageLimitException e = refused(ImageLimitException.class, b -> b.capacity = 1L << 54, 12);
        assertTrue(e.getMessage().contains("2^63"), e.getMessage());
        refused(ImageLimitException.class, b -> b.capacity = -1, 12);
    }

    /** Within 2^63 bytes, but a directory QEMU would not allocate (more than 32 Mi tables). */
    @Test
    void directoryLargerThanQemusLimit() {
        refused(ImageLimitException.class, b -> {
            b.capacity = 1L << 50;
            b.grainSize = 1;
            b.gtesPerGt = 1;
        }, 12);
    }

    @Test
    void tablesPastTheEndOfTheFile() {
        refused(CorruptImageException.class, b -> b.gdOffset = 100_000, 56);
        refused(CorruptImageException.class, b -> {
            b.flags |= VmdkSparseHeader.FLAG_RGD;
            b.rgdOffset = 1L << 40;
        }, 48);
        // a directory entry pointing a grain table past the end: named at the entry
        refused(CorruptImageException.class, b -> b.gdEntry0 = 5000, 21 * 512);
        refused(CorruptImageException.class, b -> b.overhead = 1L << 40, 64);
    }

    @Test
    void grainsPastTheEndOfTheFileReadAsZeroes() throws IOException {
        // a file cut short: as QEMU, the grain reads as zeroes
        byte[] grain = new byte[64 << 10];
        Arrays.fill(grain, (byte) 5);
        VmdkImages b = VmdkImages.sparse().at(128, grain);
        b.gtes = new int[] {0, 128, 99_999};
        String name = store(b.build());
        try {
            byte[] all = readAll(name);
            assertEquals(5, all[64 << 10]);
            assertArrayEquals(new byte[64 << 10], Arrays.copyOfRange(all, 128 << 10, 192 << 10));
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void versionsFlagsAndCompressionWeDoNotKnow() {
        assertEquals(Feature.FORMAT_VERSION, refused(UnsupportedFeatureException.class, b -> b.version = 4, -1)
                .feature());
        refused(UnsupportedFeatureException.class, b -> b.version = 0, -1);
        assertEquals(Feature.COMPRESSION_TYPE, refused(UnsupportedFeatureException.class,
                b -> b.compressAlgorithm = 2, -1).feature());
        refused(CorruptImageException.class, b -> b.newlineCheck = 0x0A0A0A0A, 73);
    }

    @Test
    void embeddedDescriptorsMustBeThereAndSmall() {
        refused(CorruptImageException.class, b -> b.descriptorOffset = 0, 28);
        refused(ImageLimitException.class, b -> b.descriptorSize = 1L << 30, 36);
        refused(CorruptImageException.class, b -> b.descriptor = "version=1\nCID=12\n", 512);
    }

    /** Compressed grains: markers whose size is 0, over two grains or past the end; streams that lie. */
    @Test
    void damagedCompressedGrains() {
        byte[] grain = new byte[64 << 10];
        Arrays.fill(grain, (byte) 9);
        byte[] good = VmdkImages.zlib(grain);
        Consumer<VmdkImages> stream = b -> {
            b.version = 3;
            b.flags |= VmdkSparseHeader.FLAG_COMPRESSED | VmdkSparseHeader.FLAG_MARKERS;
            b.compressAlgorithm = 1;
            b.gtes = new int[] {128};
        };
        long marker = 128 * 512 + 8;
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, good, 0)), marker);
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, good, 3L << 16)), marker);
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, good, 0xFFFF_FFFFL)),
                marker);
        CorruptImageException past = refused(CorruptImageException.class,
                stream.andThen(b -> b.compressedGrain(128, 0, good, 100_000).length = 128 * 512 + 2000), marker);
        assertTrue(past.getMessage().contains("past the end"), past.getMessage());
        // inflating to two grains: too long
        byte[] twice = VmdkImages.zlib(new byte[2 << 16]);
        CorruptImageException longer = refused(CorruptImageException.class,
                stream.andThen(b -> b.compressedGrain(128, 0, twice, -1)), 128 * 512 + 12);
        assertTrue(longer.getMessage().contains("past one grain"), longer.getMessage());
        byte[] cut = Arrays.copyOf(good, good.length / 2);
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, cut, -1)), 128 * 512 + 12);
        byte[] garbage = good.clone();
        garbage[0] = 0x12;
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, garbage, -1)),
                128 * 512 + 12);
        // a grain that decodes to less than the image needs of it
        byte[] shorter = VmdkImages.zlib(new byte[100]);
        refused(CorruptImageException.class, stream.andThen(b -> b.compressedGrain(128, 0, shorter, -1)), -1);
    }

    @Test
    void damagedFooters() {
        refused(CorruptImageException.class, b -> b.gdOffset = VmdkSparseHeader.GD_AT_END, -1);
        refused(CorruptImageException.class, b -> {
            b.gdOffset = VmdkSparseHeader.GD_AT_END;
            b.length = 1024;
        }, 0);
    }

    /** A grain table entry pointing into the header and tables: readable as QEMU reads it, never written in place. */
    @Test
    void grainsInsideTheMetadataAreNotWrittenInPlace() throws IOException {
        VmdkImages b = VmdkImages.sparse();
        b.gtes = new int[] {1};
        String name = store(b.build());
        try (Image i = open(name, true)) {
            ByteBuffer first = ByteBuffer.allocate(16);
            i.read(first, 0);
            assertEquals("# Disk Descripto", new String(first.array(), StandardCharsets.US_ASCII));
            CorruptImageException e = assertThrows(CorruptImageException.class,
                    () -> i.write(ByteBuffer.allocate(512), 0));
            assertEquals(22 * 512, e.offset().orElse(-1));
        } finally {
            MemoryStorage.delete(name);
        }
    }
}
