package imago.storage.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Preallocation;
import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class MemoryStorageTest {
    private static final int CHUNK = MemoryStorage.DEFAULT_CHUNK_SIZE;
    private static final AtomicInteger NAMES = new AtomicInteger();

    private final List<String> created = new ArrayList<>();

    private MemoryStorage fresh() {
        String name = "storage-test-" + NAMES.incrementAndGet();
        created.add(name);
        return MemoryStorage.create(name);
    }

    @AfterEach
    void deleteStores() {
        created.forEach(MemoryStorage::delete);
    }

    private static byte[] read(MemoryStorage s, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        s.read(b, offset);
        assertFalse(b.hasRemaining(), "reads are complete");
        return b.array();
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void write(MemoryStorage s, long offset, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(data);
        s.write(b, offset);
        assertFalse(b.hasRemaining(), "writes consume the buffer");
    }

    @Test
    void newStorageIsEmptyAndOneHole() throws IOException {
        MemoryStorage s = fresh();
        assertEquals(0, s.size());
        assertEquals(0, s.allocatedSize().getAsLong());
        assertEquals(new StorageExtent(0, 1000, false), s.dataExtent(0, 1000));
        assertArrayEquals(new byte[100], read(s, 12345, 100), "past the end reads zeroes");
    }

    @Test
    void writeAcrossChunkBoundaryRoundTripsAndAllocatesBothChunks() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(1000, 1);
        write(s, CHUNK - 500, data);
        assertEquals(CHUNK + 500, s.size());
        assertArrayEquals(data, read(s, CHUNK - 500, 1000));
        assertEquals(2L * CHUNK, s.allocatedSize().getAsLong());
        byte[] around = read(s, CHUNK - 600, 1200);
        assertArrayEquals(new byte[100], Arrays.copyOfRange(around, 0, 100));
        assertArrayEquals(data, Arrays.copyOfRange(around, 100, 1100));
        assertArrayEquals(new byte[100], Arrays.copyOfRange(around, 1100, 1200), "past the end reads zeroes");
    }

    @Test
    void readsWorkWithDirectAndSlicedBuffers() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(3 * CHUNK, 2);
        s.write(ByteBuffer.allocateDirect(data.length).put(data).flip(), 0);
        ByteBuffer dst = ByteBuffer.allocateDirect(3 * CHUNK + 20).position(10).limit(3 * CHUNK + 10);
        s.read(dst, 0);
        byte[] back = new byte[data.length];
        dst.position(10);
        dst.get(back);
        assertArrayEquals(data, back);
    }

    @Test
    void emptyWriteDoesNotGrowAndSparseWriteLeavesHoles() throws IOException {
        MemoryStorage s = fresh();
        s.write(ByteBuffer.allocate(0), 5 * CHUNK);
        assertEquals(0, s.size());
        write(s, 3L * CHUNK + 7, new byte[] {1, 2, 3});
        assertEquals(3L * CHUNK + 10, s.size());
        assertEquals(CHUNK, s.allocatedSize().getAsLong());
        assertEquals(new StorageExtent(0, 3L * CHUNK, false), s.dataExtent(0, Long.MAX_VALUE));
        assertEquals(new StorageExtent(3L * CHUNK, 10, true), s.dataExtent(3L * CHUNK, Long.MAX_VALUE),
                "a data run stops at the size");
        assertEquals(new StorageExtent(3L * CHUNK + 10, 50, false), s.dataExtent(3L * CHUNK + 10, 50));
        assertEquals(new StorageExtent(3L * CHUNK + 5, 2, true), s.dataExtent(3L * CHUNK + 5, 2));
    }

    @Test
    void dataExtentsJoinConsecutiveChunksAndStopAtTheNextHole() throws IOException {
        MemoryStorage s = fresh();
        write(s, 0, pattern(2 * CHUNK, 3));
        write(s, 4L * CHUNK, pattern(CHUNK, 4));
        assertEquals(new StorageExtent(10, 2L * CHUNK - 10, true), s.dataExtent(10, Long.MAX_VALUE));
        assertEquals(new StorageExtent(10, 100, true), s.dataExtent(10, 100));
        assertEquals(new StorageExtent(2L * CHUNK, 2L * CHUNK, false), s.dataExtent(2L * CHUNK, Long.MAX_VALUE));
        assertEquals(new StorageExtent(4L * CHUNK, CHUNK, true), s.dataExtent(4L * CHUNK, Long.MAX_VALUE));
        assertEquals(new StorageExtent(5L * CHUNK, 1, false), s.dataExtent(5L * CHUNK, 1));
        assertThrows(IllegalArgumentException.class, () -> s.dataExtent(0, 0));
        assertThrows(IllegalArgumentException.class, () -> s.dataExtent(-1, 10));
    }

    @Test
    void writeZeroesWithUnmapDropsWholeChunksAndFillsTheEdges() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(4 * CHUNK, 5);
        write(s, 0, data);
        s.writeZeroes(CHUNK / 2, 2L * CHUNK, true);
        Arrays.fill(data, CHUNK / 2, CHUNK / 2 + 2 * CHUNK, (byte) 0);
        assertArrayEquals(data, read(s, 0, 4 * CHUNK));
        assertEquals(3L * CHUNK, s.allocatedSize().getAsLong(), "only chunk 1 was covered entirely");
        assertEquals(new StorageExtent(CHUNK, CHUNK, false), s.dataExtent(CHUNK, Long.MAX_VALUE));
        assertEquals(4L * CHUNK, s.size());
    }

    @Test
    void writeZeroesWithoutUnmapKeepsChunksAllocated() throws IOException {
        MemoryStorage s = fresh();
        write(s, 0, pattern(4 * CHUNK, 6));
        s.writeZeroes(0, 4L * CHUNK, false);
        assertArrayEquals(new byte[4 * CHUNK], read(s, 0, 4 * CHUNK));
        assertEquals(4L * CHUNK, s.allocatedSize().getAsLong());
        assertEquals(new StorageExtent(0, 4L * CHUNK, true), s.dataExtent(0, Long.MAX_VALUE));
    }

    @Test
    void writeZeroesInsideOneChunkAndPastTheEnd() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(1000, 7);
        write(s, 0, data);
        s.writeZeroes(100, 50, true);
        Arrays.fill(data, 100, 150, (byte) 0);
        assertArrayEquals(data, read(s, 0, 1000));
        assertEquals(CHUNK, s.allocatedSize().getAsLong());
        s.writeZeroes(900, 10L * CHUNK, true);
        assertEquals(900 + 10L * CHUNK, s.size(), "zeroing past the end grows the storage, as writing zeroes would");
        assertArrayEquals(Arrays.copyOf(Arrays.copyOf(data, 900), 2000), read(s, 0, 2000));
        s.writeZeroes(20L * CHUNK, 0, false);
        assertEquals(900 + 10L * CHUNK, s.size(), "an empty range changes nothing");
    }

    @Test
    void discardZeroesAndKeepsTheSize() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(3 * CHUNK, 8);
        write(s, 0, data);
        s.discard(10, 3L * CHUNK + 1000);
        assertEquals(3L * CHUNK, s.size());
        assertArrayEquals(Arrays.copyOf(data, 10), Arrays.copyOf(read(s, 0, 3 * CHUNK), 10));
        assertArrayEquals(new byte[3 * CHUNK - 10], Arrays.copyOfRange(read(s, 0, 3 * CHUNK), 10, 3 * CHUNK));
        assertEquals(CHUNK, s.allocatedSize().getAsLong());
    }

    @Test
    void shrinkDropsChunksAndClearsTheTailSoGrowingReadsZeroes() throws IOException {
        MemoryStorage s = fresh();
        byte[] data = pattern(3 * CHUNK, 9);
        write(s, 0, data);
        s.resize(CHUNK + 10, Preallocation.OFF);
        assertEquals(CHUNK + 10, s.size());
        assertEquals(2L * CHUNK, s.allocatedSize().getAsLong());
        s.resize(3L * CHUNK, Preallocation.OFF);
        byte[] expected = Arrays.copyOf(Arrays.copyOf(data, CHUNK + 10), 3 * CHUNK);
        assertArrayEquals(expected, read(s, 0, 3 * CHUNK));
        s.resize(0, Preallocation.OFF);
        assertEquals(0, s.allocatedSize().getAsLong());
        assertEquals(0, s.size());
    }

    @Test
    void writingPastTheEndAfterAShrinkSeesZeroesInBetween() throws IOException {
        MemoryStorage s = fresh();
        write(s, 0, pattern(CHUNK, 10));
        s.resize(100, Preallocation.OFF);
        write(s, 200, new byte[] {9});
        byte[] back = read(s, 100, 101);
        assertArrayEquals(new byte[100], Arrays.copyOf(back, 100));
        assertEquals(9, back[100]);
    }

    @Test
    void preallocationModes() throws IOException {
        for (Preallocation p : Preallocation.values()) {
            MemoryStorage s = fresh();
            write(s, 0, new byte[] {1});
            s.resize(3L * CHUNK + 1, p);
            assertEquals(3L * CHUNK + 1, s.size());
            boolean allocates = p == Preallocation.FALLOC || p == Preallocation.FULL;
            assertEquals(allocates ? 4L * CHUNK : CHUNK, s.allocatedSize().getAsLong(), p.toString());
            assertEquals(new StorageExtent(0, allocates ? 3L * CHUNK + 1 : CHUNK, true), s.dataExtent(0, Long.MAX_VALUE),
                    p.toString());
            assertArrayEquals(new byte[100], read(s, 3L * CHUNK - 99, 100));
        }
    }

    @Test
    void preallocatingMoreThanTheHeapFails() {
        MemoryStorage s = fresh();
        IOException e = assertThrows(IOException.class, () -> s.resize(Long.MAX_VALUE / 2, Preallocation.FULL));
        assertTrue(e.getMessage().contains(s.name()), e.getMessage());
    }

    @Test
    void hugeSparseStorageIsCheapToQuery() throws IOException {
        MemoryStorage s = fresh();
        long tib = 1L << 40;
        s.resize(tib, Preallocation.OFF);
        write(s, tib - 10, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
        assertEquals(new StorageExtent(0, tib - CHUNK, false), s.dataExtent(0, Long.MAX_VALUE));
        assertEquals(new StorageExtent(tib - CHUNK, CHUNK, true), s.dataExtent(tib - CHUNK, Long.MAX_VALUE));
        assertEquals(tib, s.size());
        assertArrayEquals(new byte[] {0, 1, 2}, read(s, tib - 11, 3));
        assertThrows(IllegalArgumentException.class, () -> read(s, Long.MAX_VALUE - 1, 3));
        assertThrows(IllegalArgumentException.class, () -> read(s, -1, 3));
    }

    @Test
    void invalidArgumentsAreCallerMistakes() {
        MemoryStorage s = fresh();
        assertThrows(IllegalArgumentException.class, () -> s.resize(-1, Preallocation.OFF));
        assertThrows(IllegalArgumentException.class, () -> s.writeZeroes(-1, 10, true));
        assertThrows(IllegalArgumentException.class, () -> s.writeZeroes(0, -1, true));
        assertThrows(IllegalArgumentException.class, () -> s.discard(Long.MAX_VALUE, 2));
        assertThrows(IllegalArgumentException.class, () -> s.write(ByteBuffer.allocate(1), -5));
    }

    @Test
    void closedHandleRefusesIoButOtherHandlesWork() throws IOException {
        MemoryStorage s = fresh();
        MemoryStorage other = MemoryStorage.open(s.location().name(), true);
        s.close();
        s.close();
        assertThrows(ClosedChannelException.class, () -> read(s, 0, 1));
        assertThrows(ClosedChannelException.class, () -> write(s, 0, new byte[1]));
        assertThrows(ClosedChannelException.class, s::size);
        write(other, 0, new byte[] {4});
        assertEquals(1, other.size());
    }

    @Test
    void concurrentWritersOnDisjointRangesSharingChunks() throws Exception {
        MemoryStorage s = fresh();
        int writers = 64;
        int stripe = 1000; // not a divisor of the chunk size: stripes straddle chunk boundaries
        int rounds = 40;
        long total = (long) writers * stripe * rounds;
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int id = w;
                fs.add(ex.submit(() -> {
                    byte[] mine = new byte[stripe];
                    Arrays.fill(mine, (byte) (id + 1));
                    for (int r = 0; r < rounds; r++) {
                        long off = ((long) r * writers + id) * stripe;
                        s.write(ByteBuffer.wrap(mine), off);
                        if (r % 3 == 0) {
                            s.writeZeroes(off, stripe / 2, r % 2 == 0);
                            s.write(ByteBuffer.wrap(mine, 0, stripe / 2), off);
                        }
                        if (r % 5 == 0) {
                            s.discard(off + 10, 20);
                            s.write(ByteBuffer.wrap(mine, 10, 20), off + 10);
                        }
                        byte[] back = new byte[stripe];
                        s.read(ByteBuffer.wrap(back), off);
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
        }
        assertEquals(total, s.size(), "concurrent writes past the end grow to the furthest one");
        byte[] all = read(s, 0, (int) total);
        for (int i = 0; i < all.length; i += stripe) {
            byte[] expected = new byte[stripe];
            Arrays.fill(expected, (byte) ((i / stripe) % writers + 1));
            assertArrayEquals(expected, Arrays.copyOfRange(all, i, i + stripe), "stripe at " + i);
        }
        assertEquals((total + CHUNK - 1) / CHUNK * CHUNK, s.allocatedSize().getAsLong());
    }

    @Test
    void resizeWhileOthersReadAndWriteStaysConsistent() throws Exception {
        MemoryStorage s = fresh();
        byte[] data = pattern(4 * CHUNK, 11);
        write(s, 0, data);
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 16; t++) {
                fs.add(ex.submit(() -> {
                    for (int i = 0; i < 200; i++) {
                        byte[] back = read(s, 0, 100);
                        if (!Arrays.equals(Arrays.copyOf(data, 100), back)) {
                            throw new AssertionError("the first bytes changed");
                        }
                    }
                    return null;
                }));
            }
            fs.add(ex.submit(() -> {
                for (int i = 0; i < 200; i++) {
                    s.resize(CHUNK + i, Preallocation.OFF);
                    s.resize(2L * CHUNK + i, i % 2 == 0 ? Preallocation.FULL : Preallocation.OFF);
                }
                return null;
            }));
            for (Future<?> f : fs) {
                f.get();
            }
        }
        assertArrayEquals(new byte[CHUNK], read(s, CHUNK + 199, CHUNK), "the shrunk tail was cleared");
    }
}
