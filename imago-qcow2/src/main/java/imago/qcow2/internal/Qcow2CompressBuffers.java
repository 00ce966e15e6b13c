package imago.qcow2.internal;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct buffers for compressed writes, pooled: each write needs room for one cluster's compressed
 * bytes (and, when the caller's data is not in a direct buffer or is a partial last cluster, for the
 * whole cluster). Allocating and zeroing two cluster-sized arrays per cluster, copying the input into
 * one, and the file channel copying the other into its own direct buffer cost 0.2-0.4 s of CPU per GiB,
 * a fifth to a third of what zstd itself needs; with direct buffers the data goes from the caller's
 * buffer through the compressor to the file with no copy. A queue, not a ThreadLocal, because writers
 * are often short-lived virtual threads.
 */
final class Qcow2CompressBuffers {
    /** At most this many bytes are kept idle, however many cores (a buffer is 2 clusters: 4 MiB for 2 MiB ones). */
    private static final long MAX_IDLE_BYTES = 32L << 20;
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors() * 2);
    private static final ConcurrentLinkedQueue<ByteBuffer> IDLE = new ConcurrentLinkedQueue<>();
    private static final AtomicLong IDLE_BYTES = new AtomicLong();

    private Qcow2CompressBuffers() {
    }

    /** A direct buffer of at least {@code capacity} bytes, contents undefined; give it back when done. */
    static ByteBuffer take(int capacity) {
        ByteBuffer b = IDLE.poll();
        if (b != null) {
            IDLE_BYTES.addAndGet(-b.capacity());
            if (b.capacity() >= capacity) {
                return b.clear();
            }
            // too small (a pool used for smaller clusters before): dropped for a new one
        }
        return ByteBuffer.allocateDirect(capacity);
    }

    /** Returns a buffer from {@link #take}; it must not be used afterwards. */
    static void give(ByteBuffer b) {
        if (IDLE.size() >= MAX_IDLE) {
            return;
        }
        if (IDLE_BYTES.addAndGet(b.capacity()) > MAX_IDLE_BYTES) {
            IDLE_BYTES.addAndGet(-b.capacity());
            return;
        }
        IDLE.add(b);
    }
}
