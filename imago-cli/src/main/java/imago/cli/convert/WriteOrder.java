package imago.cli.convert;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Hands the chunks of a {@link Converter} out to the threads that copy them, each with a buffer to read it into, and
 * has their recorded writes made in guest order, as qemu-img convert writes by default (so that a new image's
 * clusters are allocated in guest order), or as they come ({@code -W}); and stops every thread when one chunk fails.
 *
 * <p>In order, the writes of a chunk are made by whichever thread finds it is their turn: the thread that read the
 * chunk, if the chunks before it are written, else the thread that writes the one before it, which goes on to every
 * following chunk that is read by then. Writes, which the kernel serialises on the target file anyway, so run back
 * to back while the other threads read, and no thread waits to be woken for its turn to write; a thread waits only
 * for a free buffer, when the reads are that far ahead of the writes.
 */
final class WriteOrder {
    /** Makes the recorded writes of a chunk. */
    @FunctionalInterface
    interface ChunkWriter {
        void write(ChunkWrites chunk) throws IOException;
    }

    /** Whether chunks are written in guest order. */
    private final boolean inOrder;
    private final long size;
    private final long chunks;
    private final int maxBuffers;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition bufferFreed = lock.newCondition();
    /** Buffers whose chunk is written, to read the next ones into (guarded by {@link #lock}, as all below). */
    private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
    private int allocated;
    /** The next chunk to hand out. */
    private long next;
    /** In order: the chunk whose writes are made next. */
    private long turn;
    /** In order: whether a thread is making writes (of {@link #turn}'s chunk and those after it that are ready). */
    private boolean writing;
    /** In order: chunks read whose turn has not come, by number. */
    private final Map<Long, ChunkWrites> ready = new HashMap<>();
    /** Set when a chunk fails: the others stop. */
    private volatile boolean failed;

    /**
     * @param inOrder whether chunks write in guest order; if not, each is written by its reader as soon as it is read
     * @param size the guest bytes to copy, in chunks of {@link Converter#CHUNK} bytes
     * @param maxBuffers how many chunk buffers there are at most: at least the number of threads, so that each can
     *        hold one while it reads
     */
    WriteOrder(boolean inOrder, long size, int maxBuffers) {
        if (maxBuffers < 1) {
            throw new IllegalArgumentException("need at least one buffer");
        }
        this.inOrder = inOrder;
        this.size = size;
        this.chunks = (size + Converter.CHUNK - 1) / Converter.CHUNK;
        this.maxBuffers = maxBuffers;
    }

    /** Whether a chunk has failed. */
    boolean failed() {
        return failed;
    }

    /** Stops every chunk: those running end after their current step, and no more are handed out or written. */
    void fail() {
        failed = true;
        lock.lock();
        try {
            bufferFreed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * The next chunk to copy, with a buffer to read it into, once one is free; or {@code null} when every chunk is
     * handed out or one has failed.
     *
     * @throws InterruptedIOException if the thread is interrupted while it waits for a buffer
     */
    ChunkWrites take() throws InterruptedIOException {
        ByteBuffer buffer;
        long k;
        lock.lock();
        try {
            // the number and the buffer go together: a chunk that has its number has its buffer, so the one whose turn
            // it is never waits for a buffer that only its own writes would free
            while (!failed && next < chunks && free.isEmpty() && allocated == maxBuffers) {
                bufferFreed.await();
            }
            if (failed || next >= chunks) {
                return null;
            }
            k = next++;
            if (next == chunks) {
                bufferFreed.signalAll(); // those waiting for a buffer have nothing left to copy
            }
            buffer = free.poll();
            if (buffer == null) {
                allocated++;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        } finally {
            lock.unlock();
        }
        if (buffer == null) {
            buffer = ByteBuffer.allocateDirect(Converter.CHUNK);
        }
        long start = k * Converter.CHUNK;
        return new ChunkWrites(k, start, (int) Math.min(Converter.CHUNK, size - start), buffer);
    }

    /**
     * Hands over a chunk that is read, its writes recorded: they are made now by this thread if it is their turn, and
     * then those of the following chunks that are read by then; else by the thread that makes the ones before them.
     * Each chunk's buffer is free again once its writes are made.
     *
     * @throws IOException if {@code writer} fails on a chunk (the caller then stops the others with {@link #fail})
     */
    void submit(ChunkWrites chunk, ChunkWriter writer) throws IOException {
        if (!inOrder) {
            writer.write(chunk);
            release(chunk);
            return;
        }
        lock.lock();
        try {
            if (writing || chunk.index() != turn) {
                ready.put(chunk.index(), chunk);
                return;
            }
            writing = true;
        } finally {
            lock.unlock();
        }
        for (ChunkWrites c = chunk; c != null; ) {
            writer.write(c);
            lock.lock();
            try {
                free.add(c.buffer());
                bufferFreed.signal();
                turn++;
                c = failed ? null : ready.remove(turn);
                if (c == null) {
                    writing = false;
                }
            } finally {
                lock.unlock();
            }
        }
    }

    private void release(ChunkWrites chunk) {
        lock.lock();
        try {
            free.add(chunk.buffer());
            bufferFreed.signal();
        } finally {
            lock.unlock();
        }
    }
}
