package imago.qcow2.internal;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Direct buffers for compressed writes, pooled: each write needs room for one cluster's compressed
 * bytes (and, when the caller's data is not in a direct buffer or is a partial last cluster, for the
 * whole cluster), and allocating and zeroing two cluster-sized arrays per cluster cost as much as a
 * tenth of the compression itself, plus the copy the file channel makes of a heap buffer. With direct
 * buffers the data goes from the caller's buffer through the compressor to the file with no copy.
 * A queue, not a ThreadLocal, because writers are often short-lived virtual threads.
 */
final class Qcow2CompressBuffers {
    /** Larger buffers (for clusters over 256 KiB) are not kept. */
    private static final int MAX_POOLED = 512 << 10;
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors() * 2);
    private static final ConcurrentLinkedQueue<ByteBuffer> IDLE = new ConcurrentLinkedQueue<>();

    private Qcow2CompressBuffers() {
    }

    /** A direct buffer of at least {@code capacity} bytes, contents undefined; give it back when done. */
    static ByteBuffer take(int capacity) {
        ByteBuffer b = IDLE.poll();
        if (b == null || b.capacity() < capacity) {
            b = ByteBuffer.allocateDirect(Math.max(capacity, b == null ? 0 : b.capacity()));
        }
        return b.clear();
    }

    /** Returns a buffer from {@link #take}; it must not be used afterwards. */
    static void give(ByteBuffer b) {
        if (b.capacity() <= MAX_POOLED && IDLE.size() < MAX_IDLE) {
            IDLE.add(b);
        }
    }
}
