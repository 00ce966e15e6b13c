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
    void newImageReadsZeroesAndIsOneReservedHole() throws IOException {
        try (LayeredImage img = image(3L * CHUNK)) {
            assertEquals("raw", img.format());
            assertEquals(storage.name(), img.name());
            assertEquals(3L * CHUNK, img.size());
            assertArrayEquals(new byte[3 * CHUNK], read(img, 0, 3 * CHUNK));
            assertEquals(new Mapping.Zero(0, 3L * CHUNK, storage, 0), img.mapping(0, Long.MAX_VALUE));
            assertEquals(List.of(new Extent(0, 3L * CHUNK, 0, true, true, false, false, OptionalLong.of(0),
                    Optional.of(storage.name()))), img.extents(0, 3L * CHUNK));
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
        try (LayeredImage img = image(1000)) {
            assertThrows(IllegalArgumentException.class, () -> read(img, 990, 20));
            assertThrows(IllegalArgumentException.class, () -> read(img, 1001, 0));
            assertThrows(IllegalArgumentException.class, () -> write(img, 999, new byte[2]));
            assertThrows(IllegalArgumentException.class, () -> img.writeZeroes(500, 501));
            assertThrows(IllegalArgumentException.class, () -> img.discard(0, 1001));
            assertThrows(IllegalArgumentException.class, () -> img.mapping(1000, 1));
            assertThrows(IllegalArgumentException.class, () -> img.mapping(0, 0));
            read(img, 1000, 0);
            assertEquals(1000, storage.size(), "refused requests change nothing");
            assertArrayEquals(new byte[10], read(img, 990, 10));
        }
    }

    @Test
    void layerAnswersEndOfImageAndCapsMappings() throws IOException {
        MemoryStorage s = MemoryStorage.create("raw-layer");
        names.add("raw-layer");
        driver.create(s, CreateOptions.ofSize(1000));
        try (FormatInstance raw = driver.open(s, OpenContext.of(true))) {
            assertEquals(new Mapping.EndOfImage(1000), raw.mapping(1000, 10));
            assertEquals(new Mapping.EndOfImage(5000), raw.mapping(5000, 10));
            assertEquals(new Mapping.Zero(900, 100, s, 900), raw.mapping(900, Long.MAX_VALUE));
            assertEquals(new Mapping.Data(900, 100, s, 900), raw.readMapping(900, Long.MAX_VALUE),
                    "reads skip the hole query: a hole reads as zeroes from the storage anyway");
            assertEquals(new Mapping.EndOfImage(1000), raw.readMapping(1000, 10));
            assertEquals(new Mapping.Data(990, 10, s, 990), raw.beginWrite(990, 500, BackingReader.ZEROES).mapping());
            assertThrows(IllegalArgumentException.class, () -> raw.mapping(-1, 10));
            assertThrows(IllegalArgumentException.class, () -> raw.mapping(0, 0));
            assertThrows(IllegalArgumentException.class, () -> raw.beginWrite(1000, 1, BackingReader.ZEROES));
            assertEquals(0, raw.ensureZeroMapping(1000, 10, true), "nothing to zero past the end");
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
            assertEquals(CHUNK + 7, img.size());
            assertEquals(CHUNK + 7, storage.size());
            assertThrows(IllegalArgumentException.class, () -> read(img, CHUNK, 8));
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
