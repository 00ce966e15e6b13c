package imago.cli.convert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link WriteOrder}: chunks are handed out each with its own buffer, written once each, in guest order by whichever
 * thread holds the turn, a buffer is handed out again only once its chunk is written, and a failure stops every
 * thread, those waiting for a buffer too.
 */
@Timeout(60)
class WriteOrderTest {
    private static final int CHUNK = Converter.CHUNK;

    @Test
    void manyThreadsWriteEveryChunkOnceInGuestOrder() throws Exception {
        long size = 37L * CHUNK + 12345;
        for (int threads : new int[] {1, 2, 4, 7}) {
            for (int buffers : new int[] {threads, threads + 1}) {
                WriteOrder order = new WriteOrder(true, size, buffers);
                List<Long> written = Collections.synchronizedList(new ArrayList<>());
                Map<ByteBuffer, Boolean> used = Collections.synchronizedMap(new IdentityHashMap<>());
                Set<Long> inFlight = ConcurrentHashMap.newKeySet();
                copy(order, threads, chunk -> {
                    // the buffer still holds what this chunk's read put there: no other chunk was read into it
                    assertEquals(chunk.index(), chunk.buffer().getLong(0), "buffer reused before its chunk was written");
                    assertEquals(chunk.index(), chunk.buffer().getLong(chunk.length() - Long.BYTES));
                    assertTrue(inFlight.add(chunk.index()), "two threads write at once");
                    pause();
                    inFlight.remove(chunk.index());
                    written.add(chunk.index());
                    assertEquals(chunk.index() == 37 ? 12345 : CHUNK, chunk.length());
                    assertEquals(chunk.index() * CHUNK, chunk.start());
                    used.put(chunk.buffer(), true);
                });
                assertEquals(LongStream.range(0, 38).boxed().toList(), written, threads + " threads, " + buffers
                        + " buffers");
                assertTrue(used.size() <= buffers, used.size() + " buffers used of " + buffers);
            }
        }
    }

    @Test
    void unorderedThreadsWriteEveryChunkOnce() throws Exception {
        WriteOrder order = new WriteOrder(false, 40L * CHUNK, 4);
        List<Long> written = Collections.synchronizedList(new ArrayList<>());
        copy(order, 4, chunk -> {
            assertEquals(chunk.index(), chunk.buffer().getLong(0));
            pause();
            written.add(chunk.index());
        });
        assertEquals(LongStream.range(0, 40).boxed().toList(), written.stream().sorted().toList());
    }

    @Test
    void theThreadWhoseTurnItIsWritesTheChunksReadAfterIt() throws IOException {
        WriteOrder order = new WriteOrder(true, 3L * CHUNK, 3);
        List<String> written = new ArrayList<>();
        WriteOrder.ChunkWriter writer = c -> written.add(c.index() + " by " + Thread.currentThread().getName());
        ChunkWrites first = order.take();
        ChunkWrites second = order.take();
        ChunkWrites third = order.take();
        assertNull(order.take(), "every chunk is handed out");
        order.submit(third, writer);
        order.submit(second, writer);
        assertEquals(List.of(), written, "not their turn: kept for later");
        order.submit(first, writer);
        String me = Thread.currentThread().getName();
        assertEquals(List.of("0 by " + me, "1 by " + me, "2 by " + me), written);
    }

    @Test
    void unorderedChunksAreWrittenWhenSubmitted() throws IOException {
        WriteOrder order = new WriteOrder(false, 2L * CHUNK, 2);
        List<Long> written = new ArrayList<>();
        ChunkWrites first = order.take();
        ChunkWrites second = order.take();
        order.submit(second, c -> written.add(c.index()));
        assertEquals(List.of(1L), written);
        order.submit(first, c -> written.add(c.index()));
        assertEquals(List.of(1L, 0L), written);
    }

    @Test
    void aTakeWaitsForABufferAndGetsOneWhoseChunkIsWritten() throws Exception {
        WriteOrder order = new WriteOrder(true, 3L * CHUNK, 2);
        ChunkWrites first = order.take();
        ChunkWrites second = order.take();
        assertFalse(first.buffer() == second.buffer());
        CompletableFuture<ChunkWrites> third = takeAsync(order);
        assertThrows(TimeoutException.class, () -> third.get(200, TimeUnit.MILLISECONDS), "both buffers in use");
        order.submit(second, c -> { });
        assertThrows(TimeoutException.class, () -> third.get(200, TimeUnit.MILLISECONDS), "chunk 1 waits for 0");
        order.submit(first, c -> { });
        ChunkWrites got = third.get(30, TimeUnit.SECONDS);
        assertEquals(2, got.index());
        assertTrue(got.buffer() == first.buffer() || got.buffer() == second.buffer(), "a buffer is reused");
    }

    @Test
    void aFailureStopsTheThreadsWaitingForABufferAndHandsOutNoMoreChunks() throws Exception {
        WriteOrder order = new WriteOrder(true, 4L * CHUNK, 1);
        ChunkWrites first = order.take();
        assertNotNull(first);
        CompletableFuture<ChunkWrites> waiting = takeAsync(order);
        assertThrows(TimeoutException.class, () -> waiting.get(200, TimeUnit.MILLISECONDS), "the one buffer in use");
        order.fail();
        assertNull(waiting.get(30, TimeUnit.SECONDS));
        assertTrue(order.failed());
        assertNull(order.take());
    }

    @Test
    void aFailedWriteIsThrownAndTheChunksAfterItAreNotWritten() throws Exception {
        WriteOrder order = new WriteOrder(true, 3L * CHUNK, 3);
        List<Long> written = new ArrayList<>();
        ChunkWrites first = order.take();
        ChunkWrites second = order.take();
        order.submit(second, c -> written.add(c.index()));
        IOException boom = new IOException("boom");
        IOException thrown = assertThrows(IOException.class, () -> order.submit(first, c -> {
            throw boom;
        }));
        assertSame(boom, thrown);
        order.fail();
        assertEquals(List.of(), written);
        assertNull(order.take());
    }

    /**
     * Copies with {@code threads} threads as {@link Converter} does: each takes a chunk, "reads" it (stamps its number
     * at both ends of its room in the buffer), pauses now and then, and submits it to {@code writer}.
     */
    private static void copy(WriteOrder order, int threads, WriteOrder.ChunkWriter writer) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Void>> workers = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                workers.add(pool.submit(() -> {
                    for (ChunkWrites chunk; (chunk = order.take()) != null; ) {
                        chunk.buffer().putLong(0, chunk.index());
                        chunk.buffer().putLong(chunk.length() - Long.BYTES, chunk.index());
                        pause();
                        try {
                            order.submit(chunk, writer);
                        } catch (IOException | RuntimeException | Error e) {
                            order.fail();
                            throw e;
                        }
                    }
                    return null;
                }));
            }
            for (Future<Void> w : workers) {
                w.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** Lets the threads interleave differently from run to run: sometimes no pause, sometimes up to 0.2 ms. */
    private static void pause() {
        int r = ThreadLocalRandom.current().nextInt(4);
        if (r == 1) {
            Thread.yield();
        } else if (r == 2) {
            LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(200_000));
        }
    }

    /** {@link WriteOrder#take} on another thread. */
    private static CompletableFuture<ChunkWrites> takeAsync(WriteOrder order) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return order.take();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
    }
}
