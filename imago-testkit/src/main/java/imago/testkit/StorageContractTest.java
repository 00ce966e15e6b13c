package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import imago.api.ReadOnlyImageException;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The {@link Storage} contract, proved once for every storage: a storage's test extends this class and says how to
 * open a fresh, zero-filled store of a given size, and the same store again read-only. Checked: the size; reads
 * past the end read as zeroes; random writes, zero writes and discards against a byte-array model (a discarded
 * byte reads as zero or as before); concurrent writes to disjoint ranges; {@link Storage#dataExtent} answers that
 * start where asked, stay within the length asked, and whose holes read as zero; flushed data seen by a second
 * opening; a read-only opening that refuses every change; and writes past the end, which grow the store or fail
 * with an {@link IOException} leaving it as it was ({@link #grows()}). Offsets and lengths keep the storage's
 * {@link Storage#requestAlignment()}. Seeds are printed and replayed with {@code -Dimago.seed}.
 */
public abstract class StorageContractTest {
    /** The size of the stores the contract opens. */
    protected static final int SIZE = 4 << 20;

    /** For subclasses. */
    protected StorageContractTest() {
    }

    /**
     * A fresh writable store of {@code size} bytes that read as zero, closed by the caller.
     *
     * @throws IOException if it cannot be opened
     */
    protected abstract Storage openNew(long size) throws IOException;

    /**
     * The store {@code written} is, opened a second time, read-only (while {@code written} stays open).
     *
     * @throws IOException if it cannot be opened
     */
    protected abstract Storage openReadOnly(Storage written) throws IOException;

    /** Whether writes past the end grow the store (files, memory) rather than fail (a fixed-size device). */
    protected boolean grows() {
        return true;
    }

    @Test
    void aNewStoreHasItsSizeAndReadsAsZeroesPastItsEnd() throws IOException {
        try (Storage s = openNew(SIZE)) {
            assertEquals(SIZE, s.size());
            assertFalse(s.readOnly());
            int a = alignment(s);
            ByteBuffer dst = ByteBuffer.allocate(2 * a);
            Arrays.fill(dst.array(), (byte) 7);
            s.read(dst, SIZE - a);
            assertFalse(dst.hasRemaining(), "a read is complete");
            assertArrayEquals(new byte[2 * a], dst.array(), "the last block and what lies past the end read as zero");
        }
    }

    @Test
    void randomWritesZeroesAndDiscardsReadBackAsTheModelSays() throws IOException {
        long seed = PropertyRuns.seed("storage contract");
        Random random = new Random(seed);
        try (Storage s = openNew(SIZE)) {
            int a = alignment(s);
            byte[] model = new byte[SIZE];
            for (int step = 0; step < 60; step++) {
                int offset = random.nextInt(SIZE / a) * a;
                int length = Math.min(SIZE - offset, (1 + random.nextInt(64 * 1024 / a)) * a);
                switch (random.nextInt(4)) {
                    case 0, 1 -> {
                        byte[] data = new byte[length];
                        random.nextBytes(data);
                        s.write(ByteBuffer.wrap(data), offset);
                        System.arraycopy(data, 0, model, offset, length);
                    }
                    case 2 -> {
                        s.writeZeroes(offset, length, random.nextBoolean());
                        Arrays.fill(model, offset, offset + length, (byte) 0);
                    }
                    default -> {
                        s.discard(offset, length);
                        byte[] now = read(s, offset, length);
                        for (int i = 0; i < length; i++) {
                            if (now[i] != 0 && now[i] != model[offset + i]) {
                                fail("seed " + seed + ": byte " + (offset + i) + " after a discard reads " + now[i]);
                            }
                        }
                        System.arraycopy(now, 0, model, offset, length);
                    }
                }
            }
            assertArrayEquals(model, read(s, 0, SIZE), "seed " + seed);
            checkExtents(s, model, seed);
            s.flush();
            s.sync();
            try (Storage again = openReadOnly(s)) {
                assertArrayEquals(model, read(again, 0, SIZE), "seed " + seed + ": what a second opening reads");
            }
        }
    }

    @Test
    void concurrentWritesToDisjointRangesAllLand() throws Exception {
        try (Storage s = openNew(SIZE); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            int stripe = SIZE / 8;
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int id = t;
                done.add(pool.submit(() -> {
                    byte[] data = new byte[stripe / 16];
                    Arrays.fill(data, (byte) (id + 1));
                    for (int i = 0; i < 16; i++) {
                        s.write(ByteBuffer.wrap(data), (long) id * stripe + (long) i * data.length);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            byte[] all = read(s, 0, SIZE);
            for (int i = 0; i < SIZE; i++) {
                if (all[i] != i / stripe + 1) {
                    fail("byte " + i + " reads " + all[i] + ", written " + (i / stripe + 1));
                }
            }
        }
    }

    @Test
    void aReadOnlyOpeningRefusesChanges() throws IOException {
        try (Storage s = openNew(SIZE)) {
            int a = alignment(s);
            s.write(ByteBuffer.wrap(filled(a, 5)), a);
            s.flush();
            try (Storage ro = openReadOnly(s)) {
                assertTrue(ro.readOnly());
                assertThrows(ReadOnlyImageException.class, () -> ro.write(ByteBuffer.wrap(filled(a, 6)), 0));
                assertThrows(ReadOnlyImageException.class, () -> ro.writeZeroes(a, a, false));
                assertArrayEquals(filled(a, 5), read(ro, a, a));
            }
        }
    }

    @Test
    void aWritePastTheEndGrowsTheStoreOrFailsLeavingIt() throws IOException {
        try (Storage s = openNew(SIZE)) {
            int a = alignment(s);
            byte[] data = filled(2 * a, 9);
            if (grows()) {
                s.write(ByteBuffer.wrap(data), SIZE);
                assertEquals(SIZE + 2L * a, s.size());
                assertArrayEquals(data, read(s, SIZE, 2 * a));
            } else {
                assertThrows(IOException.class, () -> s.write(ByteBuffer.wrap(data), SIZE - a));
                assertEquals(SIZE, s.size());
            }
        }
    }

    /** Walks the extents: each starts where asked, is inside the length asked, and a hole reads as zero. */
    private static void checkExtents(Storage s, byte[] model, long seed) throws IOException {
        long pos = 0;
        while (pos < SIZE) {
            long asked = Math.min(SIZE - pos, 1 << 20);
            StorageExtent e = s.dataExtent(pos, asked);
            assertEquals(pos, e.offset(), "seed " + seed + ": the extent asked at " + pos);
            assertTrue(e.length() >= 1 && e.length() <= asked, "seed " + seed + ": " + e + " for " + asked + " bytes");
            if (!e.data()) {
                for (long i = pos; i < pos + e.length(); i++) {
                    if (model[(int) i] != 0) {
                        fail("seed " + seed + ": " + e + " is a hole, but byte " + i + " reads " + model[(int) i]);
                    }
                }
            }
            pos += e.length();
        }
        StorageExtent past = s.dataExtent(SIZE, 4096);
        assertFalse(past.data(), "past the end is a hole: " + past);
    }

    private static int alignment(Storage s) {
        return Math.max(512, s.requestAlignment());
    }

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** Reads {@code length} bytes at {@code offset}. */
    protected static byte[] read(Storage s, long offset, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        s.read(dst, offset);
        return dst.array();
    }
}
