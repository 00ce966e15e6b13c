package imago.raw.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Extent;
import imago.api.Image;
import imago.api.ImageInfo;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.ReadOnlyImageException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.StorageExtent;
import imago.api.spi.WriteGuard;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RawImageTest {
    private static final int CHUNK = MemoryStorage.DEFAULT_CHUNK_SIZE;
    private static final AtomicInteger NAMES = new AtomicInteger();

    private final RawFormatDriver driver = new RawFormatDriver();
    private final List<String> names = new ArrayList<>();
    private MemoryStorage storage;

    @AfterEach
    void cleanUp() {
        names.forEach(MemoryStorage::delete);
    }

    /** A writable raw image of {@code size} bytes on a fresh memory storage. */
    private LayeredImage image(long size) throws IOException {
        return image(size, OpenContext.of(true), null);
    }

    private LayeredImage image(long size, OpenContext context, WriteGuard guard) throws IOException {
        String name = "raw-image-" + NAMES.incrementAndGet();
        names.add(name);
        storage = MemoryStorage.create(name);
        driver.create(storage, CreateOptions.ofSize(size));
        LayeredImage.Builder b = LayeredImage.builder("raw", driver.open(storage, context), storage)
                .writable(context.writable());
        if (guard != null) {
            b.writeGuard(guard);
        }
        return b.build();
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] read(Image image, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        image.read(b, offset);
        assertFalse(b.hasRemaining());
        return b.array();
    }

    private static void write(Image image, long offset, byte[] data) throws IOException {
        image.write(ByteBuffer.wrap(data), offset);
    }

    @Test
    void newImageReadsZeroesAndIsAHoleAfterItsFirstBlock() throws IOException {
        try (LayeredImage img = image(3L * CHUNK)) {
            assertEquals("raw", img.format());
            assertEquals(storage.name(), img.name());
            assertEquals(3L * CHUNK, img.size());
            assertArrayEquals(new byte[3 * CHUNK], read(img, 0, 3 * CHUNK));
            // create wrote the first block, as QEMU's file driver does; the memory storage holds it as one chunk
            assertEquals(new Mapping.Data(0, CHUNK, storage, 0), img.mapping(0, Long.MAX_VALUE));
            assertEquals(new Mapping.Zero(CHUNK, 2L * CHUNK, storage, CHUNK), img.mapping(CHUNK, Long.MAX_VALUE));
            assertEquals(List.of(Extent.data(0, CHUNK, 0, storage.name()),
                    Extent.zero(CHUNK, 2L * CHUNK, CHUNK, storage.name())), img.extents(0, 3L * CHUNK));
        }
    }

    @Test
    void writesAndReadsAcrossChunkBoundariesAreIdentityMapped() throws IOException {
        try (LayeredImage img = image(4L * CHUNK)) {
            byte[] data = pattern(CHUNK + 1000, 1);
            write(img, CHUNK - 500, data);
            assertArrayEquals(data, read(img, CHUNK - 500, data.length));
            ByteBuffer host = ByteBuffer.allocate(data.length);
            storage.read(host, CHUNK - 500);
            assertArrayEquals(data, host.array(), "guest byte n is storage byte n");
            assertEquals(new Mapping.Data(0, 3L * CHUNK, storage, 0), img.mapping(0, Long.MAX_VALUE));
            assertEquals(new Mapping.Data(100, 50, storage, 100), img.mapping(100, 50));
            assertEquals(new Mapping.Zero(3L * CHUNK, CHUNK, storage, 3L * CHUNK), img.mapping(3L * CHUNK, Long.MAX_VALUE));
            List<Extent> map = img.extents(0, img.size());
            assertEquals(List.of(
                    new Extent(0, 3L * CHUNK, 0, true, false, true, false, OptionalLong.of(0), Optional.of(storage.name())),
                    new Extent(3L * CHUNK, CHUNK, 0, true, true, false, false, OptionalLong.of(3L * CHUNK),
                            Optional.of(storage.name()))), map);
            assertEquals(4L * CHUNK, img.size(), "writing inside the image does not grow it");
        }
    }

    @Test
    void requestsPastTheEndAreCallerMistakes() throws IOException {
        try (LayeredImage img = image(1024)) {
            assertThrows(IllegalArgumentException.class, () -> read(img, 1014, 20));
            assertThrows(IllegalArgumentException.class, () -> read(img, 1025, 0));
            assertThrows(IllegalArgumentException.class, () -> write(img, 1023, new byte[2]));
            assertThrows(IllegalArgumentException.class, () -> img.writeZeroes(500, 525));
            assertThrows(IllegalArgumentException.class, () -> img.discard(0, 1025));
            assertThrows(IllegalArgumentException.class, () -> img.mapping(1024, 1));
            assertThrows(IllegalArgumentException.class, () -> img.mapping(0, 0));
            read(img, 1024, 0);
            assertEquals(1024, storage.size(), "refused requests change nothing");
            assertArrayEquals(new byte[10], read(img, 1014, 10));
        }
    }

    @Test
    void layerAnswersEndOfImageAndCapsMappings() throws IOException {
        MemoryStorage s = MemoryStorage.create("raw-layer");
        names.add("raw-layer");
        s.resize(1024, Preallocation.OFF); // a hole throughout (create would write the first block)
        try (FormatInstance raw = driver.open(s, OpenContext.of(true))) {
            assertEquals(new Mapping.EndOfImage(1024), raw.mapping(1024, 10));
            assertEquals(new Mapping.EndOfImage(5000), raw.mapping(5000, 10));
            assertEquals(new Mapping.Zero(900, 124, s, 900), raw.mapping(900, Long.MAX_VALUE));
            assertEquals(new Mapping.Data(900, 124, s, 900), raw.readMapping(900, Long.MAX_VALUE),
                    "reads skip the hole query: a hole reads as zeroes from the storage anyway");
            assertEquals(new Mapping.EndOfImage(1024), raw.readMapping(1024, 10));
            assertEquals(new Mapping.Data(990, 34, s, 990), raw.beginWrite(990, 500, BackingReader.ZEROES).mapping());
            assertThrows(IllegalArgumentException.class, () -> raw.mapping(-1, 10));
            assertThrows(IllegalArgumentException.class, () -> raw.mapping(0, 0));
            assertThrows(IllegalArgumentException.class, () -> raw.beginWrite(1024, 1, BackingReader.ZEROES));
            assertEquals(0, raw.ensureZeroMapping(1024, 10, true), "nothing to zero past the end");
        }
    }

    /** A raw image on a storage of {@code length} bytes of {@code value}, not created by the driver. */
    private LayeredImage imageOnStorageOf(int length, int value) throws IOException {
        String name = "raw-partial-" + NAMES.incrementAndGet();
        names.add(name);
        storage = MemoryStorage.create(name);
        byte[] content = new byte[length];
        Arrays.fill(content, (byte) value);
        storage.write(ByteBuffer.wrap(content), 0);
        return LayeredImage.builder("raw", driver.open(storage, OpenContext.of(true)), storage).writable(true).build();
    }

    private static byte[] filled(int length, int value) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** QEMU counts sizes in 512-byte sectors: a 320-byte raw file is a 512-byte disk whose tail reads as zeroes. */
    @Test
    void aStorageEndingInAPartialSectorIsRoundedUpToAWholeSector() throws IOException {
        try (LayeredImage img = imageOnStorageOf(320, 1)) {
            assertEquals(512, img.size());
            assertEquals(320, storage.size(), "opening changes nothing");
            byte[] expected = Arrays.copyOf(filled(320, 1), 512);
            assertArrayEquals(expected, read(img, 0, 512));
            assertArrayEquals(new byte[192], read(img, 320, 192));
            assertArrayEquals(new byte[] {1, 0}, read(img, 319, 2));
            assertThrows(IllegalArgumentException.class, () -> read(img, 0, 513));
            assertEquals(new Mapping.Data(0, 320, storage, 0), img.mapping(0, Long.MAX_VALUE));
            assertEquals(new Mapping.Zero(320, 192, storage, 320), img.mapping(320, Long.MAX_VALUE),
                    "the tail past the storage is a zero extent at its own offset, as qemu-img map shows it");
            assertEquals(List.of(
                    new Extent(0, 320, 0, true, false, true, false, OptionalLong.of(0), Optional.of(storage.name())),
                    new Extent(320, 192, 0, true, true, false, false, OptionalLong.of(320), Optional.of(storage.name()))),
                    img.extents(0, img.size()));
            assertEquals(512, img.info().virtualSize());
        }
        try (LayeredImage img = imageOnStorageOf(65537, 7)) {
            assertEquals(66048, img.size());
            assertArrayEquals(Arrays.copyOf(new byte[] {7}, 511), read(img, 65536, 511));
        }
        try (LayeredImage img = imageOnStorageOf(512, 1)) {
            assertEquals(512, img.size(), "whole sectors stay as they are");
        }
    }

    /** Writes in the tail grow the storage to their end, as QEMU's positional writes to the file do. */
    @Test
    void writesIntoThePaddedTailGrowTheStorageToTheirEnd() throws IOException {
        try (LayeredImage img = imageOnStorageOf(320, 1)) {
            write(img, 400, filled(16, 2));
            assertEquals(416, storage.size());
            assertEquals(512, img.size());
            byte[] expected = Arrays.copyOf(filled(320, 1), 512);
            Arrays.fill(expected, 400, 416, (byte) 2);
            assertArrayEquals(expected, read(img, 0, 512));
            assertEquals(new Mapping.Zero(416, 96, storage, 416), img.mapping(416, Long.MAX_VALUE));

            img.discard(0, 512);
            assertEquals(416, storage.size(), "a discard does not grow or shrink the storage");
            assertArrayEquals(new byte[512], read(img, 0, 512));

            img.writeZeroes(256, 256, Set.of());
            assertEquals(512, storage.size(), "zeroes are written to the end of the sector");
            write(img, 0, filled(512, 3));
            assertArrayEquals(filled(512, 3), read(img, 0, 512));
            assertEquals(new Mapping.Data(0, 512, storage, 0), img.mapping(0, Long.MAX_VALUE));
            assertThrows(IllegalArgumentException.class, () -> write(img, 512, new byte[1]));
            assertEquals(512, storage.size());
        }
    }

    @Test
    void createAndResizeToAPartialSector() throws IOException {
        try (LayeredImage img = image(1234)) {
            assertEquals(1536, storage.size(), "qemu-img create rounds a raw size up to whole sectors");
            assertEquals(1536, img.size());
            write(img, 0, filled(1536, 4));
            img.resize(1000, Preallocation.OFF);
            assertEquals(1000, storage.size(), "a resize sets the storage to exactly the size asked for");
            assertEquals(1024, img.size());
            assertArrayEquals(Arrays.copyOf(filled(1000, 4), 1024), read(img, 0, 1024));
            img.resize(1500, Preallocation.FULL);
            assertEquals(1500, storage.size());
            assertEquals(1536, img.size());
            assertArrayEquals(Arrays.copyOf(filled(1000, 4), 1536), read(img, 0, 1536));
            img.resize(1, Preallocation.OFF);
            assertEquals(512, img.size());
            assertArrayEquals(Arrays.copyOf(filled(1, 4), 512), read(img, 0, 512));
            assertThrows(IllegalArgumentException.class, () -> img.resize(Long.MAX_VALUE, Preallocation.OFF));
            assertEquals(512, img.size(), "a size that cannot be rounded up changes nothing");
            assertEquals(1, storage.size());
        }
    }

    @Test
    void readOnlyImageRefusesEveryChange() throws IOException {
        try (LayeredImage img = image(4096, OpenContext.of(false), null)) {
            assertTrue(img.readOnly());
            assertThrows(ReadOnlyImageException.class, () -> write(img, 0, new byte[1]));
            assertThrows(ReadOnlyImageException.class, () -> img.writeZeroes(0, 10));
            assertThrows(ReadOnlyImageException.class, () -> img.discard(0, 10));
            assertThrows(ReadOnlyImageException.class, () -> img.resize(8192, Preallocation.OFF));
            FormatInstance layer = img.layer();
            assertThrows(ReadOnlyImageException.class, () -> layer.beginWrite(0, 10, BackingReader.ZEROES));
            assertThrows(ReadOnlyImageException.class, () -> layer.ensureZeroMapping(0, 10, true));
            assertThrows(ReadOnlyImageException.class, () -> layer.discard(0, 10));
            assertThrows(ReadOnlyImageException.class, () -> layer.capability(imago.api.spi.Resizer.class).orElseThrow().resize(0, Preallocation.OFF, BackingReader.ZEROES));
            assertEquals(4096, img.size());
            assertArrayEquals(new byte[4096], read(img, 0, 4096));
        }
    }

    @Test
    void writeZeroesWithUnmapPunchesHolesWithoutKeepsSpace() throws IOException {
        try (LayeredImage img = image(4L * CHUNK)) {
            byte[] data = pattern(4 * CHUNK, 2);
            write(img, 0, data);
            img.writeZeroes(CHUNK, CHUNK, Set.of(ZeroFlag.MAY_UNMAP));
            img.writeZeroes(2L * CHUNK, CHUNK, Set.of(ZeroFlag.NO_FALLBACK));
            img.writeZeroes(10, 20);
            Arrays.fill(data, CHUNK, 3 * CHUNK, (byte) 0);
            Arrays.fill(data, 10, 30, (byte) 0);
            assertArrayEquals(data, read(img, 0, 4 * CHUNK));
            assertEquals(new Mapping.Zero(CHUNK, CHUNK, storage, CHUNK), img.mapping(CHUNK, Long.MAX_VALUE),
                    "an unmapped range is a hole");
            assertEquals(new Mapping.Data(2L * CHUNK, 2L * CHUNK, storage, 2L * CHUNK),
                    img.mapping(2L * CHUNK, Long.MAX_VALUE), "zeroes written without unmap keep their space");
            assertEquals(3L * CHUNK, storage.allocatedSize().getAsLong());
        }
    }

    @Test
    void discardPunchesHolesThatReadAsZeroes() throws IOException {
        try (LayeredImage img = image(3L * CHUNK)) {
            byte[] data = pattern(3 * CHUNK, 3);
            write(img, 0, data);
            img.discard(100, 2L * CHUNK);
            Arrays.fill(data, 100, 100 + 2 * CHUNK, (byte) 0);
            assertArrayEquals(data, read(img, 0, 3 * CHUNK));
            assertEquals(new StorageExtent(CHUNK, CHUNK, false), storage.dataExtent(CHUNK, Long.MAX_VALUE));
            assertEquals(3L * CHUNK, img.size());
        }
    }

    @Test
    void resizeGrowsAndShrinksTheImageAndItsStorage() throws IOException {
        try (LayeredImage img = image(2L * CHUNK)) {
            byte[] data = pattern(2 * CHUNK, 4);
            write(img, 0, data);
            img.resize(CHUNK + 7, Preallocation.OFF);
            assertEquals(CHUNK + 512, img.size(), "the size in whole sectors");
            assertEquals(CHUNK + 7, storage.size());
            assertArrayEquals(Arrays.copyOf(Arrays.copyOfRange(data, CHUNK, CHUNK + 7), 512), read(img, CHUNK, 512),
                    "the cut-off tail of the last sector reads as zeroes");
            assertThrows(IllegalArgumentException.class, () -> read(img, CHUNK, 513));
            img.resize(3L * CHUNK, Preallocation.OFF);
            byte[] expected = Arrays.copyOf(Arrays.copyOf(data, CHUNK + 7), 3 * CHUNK);
            assertArrayEquals(expected, read(img, 0, 3 * CHUNK), "grown space reads zeroes");
            img.resize(5L * CHUNK, Preallocation.FULL);
            assertEquals(new Mapping.Data(3L * CHUNK, 2L * CHUNK, storage, 3L * CHUNK),
                    img.mapping(3L * CHUNK, Long.MAX_VALUE), "preallocated space is data");
            assertArrayEquals(new byte[2 * CHUNK], read(img, 3L * CHUNK, 2 * CHUNK));
            assertThrows(UnsupportedFeatureException.class, () -> img.resize(0, Preallocation.METADATA));
            img.resize(0, Preallocation.OFF);
            assertEquals(0, img.size());
            assertEquals(0, storage.allocatedSize().getAsLong());
            assertThrows(IllegalArgumentException.class, () -> img.resize(-1, Preallocation.OFF));
        }
    }

    @Test
    void infoFlushAndClose() throws IOException {
        LayeredImage img = image(CHUNK);
        write(img, 0, new byte[] {1});
        img.flush();
        ImageInfo info = img.info();
        assertEquals(new ImageInfo(storage.name(), "raw", CHUNK, OptionalLong.of(CHUNK), OptionalInt.empty(), false,
                Optional.empty(), Optional.empty(), Optional.empty(), Map.of(), List.of()), info);
        img.close();
        assertTrue(MemoryStorage.exists(storage.location().name()), "closing an image does not delete its store");
        assertEquals(1, MemoryStorage.open(storage.location().name(), false).size() / CHUNK);
    }

    @Test
    void zeroingOrDiscardingTheFirstSectorOfAProbedImageGoesThroughTheGuard() throws IOException {
        AtomicInteger checks = new AtomicInteger();
        WriteGuard refuseAllZeroSector = sector -> {
            checks.incrementAndGet();
            if (sector.equals(ByteBuffer.allocate(sector.remaining()))) {
                throw new IOException("refusing an all-zero first sector");
            }
        };
        try (LayeredImage img = image(2L * CHUNK, new OpenContext(true, true, Map.of()), refuseAllZeroSector)) {
            byte[] data = pattern(2 * CHUNK, 5);
            write(img, 0, data);
            assertEquals(1, checks.get());
            assertThrows(IOException.class, () -> img.writeZeroes(0, 2L * CHUNK, Set.of(ZeroFlag.MAY_UNMAP)));
            assertEquals(2, checks.get(), "zeroing the first sector was checked by the guard");
            assertArrayEquals(data, read(img, 0, 2 * CHUNK), "the refused zeroing changed nothing");

            img.discard(0, 2L * CHUNK);
            byte[] expected = data.clone();
            Arrays.fill(expected, WriteGuard.GUARDED_BYTES, 2 * CHUNK, (byte) 0);
            assertArrayEquals(expected, read(img, 0, 2 * CHUNK), "discard leaves the guarded sector alone");

            img.writeZeroes(100, 50);
            Arrays.fill(expected, 100, 150, (byte) 0);
            assertArrayEquals(expected, read(img, 0, 2 * CHUNK));
            assertEquals(3, checks.get());
        }
    }

    @Test
    void imagesNotChosenByProbingZeroTheFirstSectorDirectly() throws IOException {
        try (LayeredImage img = image(CHUNK)) {
            write(img, 0, pattern(CHUNK, 6));
            img.writeZeroes(0, CHUNK, Set.of(ZeroFlag.MAY_UNMAP, ZeroFlag.NO_FALLBACK));
            assertEquals(new Mapping.Zero(0, CHUNK, storage, 0), img.mapping(0, CHUNK));
        }
    }

    @Test
    void concurrentWritersOnDisjointRanges() throws Exception {
        int writers = 48;
        int stripe = 5000;
        int rounds = 20;
        long size = (long) writers * stripe * rounds;
        try (LayeredImage img = image(size); ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int id = w;
                fs.add(ex.submit(() -> {
                    byte[] mine = new byte[stripe];
                    Arrays.fill(mine, (byte) (id + 1));
                    for (int r = 0; r < rounds; r++) {
                        long off = ((long) r * writers + id) * stripe;
                        img.write(ByteBuffer.wrap(mine), off);
                        img.writeZeroes(off + 100, 200, r % 2 == 0 ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                        img.write(ByteBuffer.wrap(mine, 100, 200), off + 100);
                        byte[] back = new byte[stripe];
                        img.read(ByteBuffer.wrap(back), off);
                        if (!Arrays.equals(mine, back)) {
                            throw new AssertionError("writer " + id + " lost its stripe at " + off);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
            byte[] all = read(img, 0, (int) size);
            for (int i = 0; i < all.length; i += stripe) {
                byte[] expected = new byte[stripe];
                Arrays.fill(expected, (byte) ((i / stripe) % writers + 1));
                assertArrayEquals(expected, Arrays.copyOfRange(all, i, i + stripe), "stripe at " + i);
            }
            assertInstanceOf(Mapping.Data.class, img.mapping(0, size));
        }
    }
}
