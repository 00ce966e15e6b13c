package imago.nbd.internal;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.List;
import java.util.stream.Stream;

/**
 * The direct buffers one connection moves request payloads and read replies through, reused from request to
 * request. Direct memory is what the socket and the image file are read and written through anyway: a heap buffer
 * costs a copy into a temporary direct buffer on each side, and a fresh one per request also costs zeroing it and
 * collecting it. Sizes are rounded up to powers of two; payloads larger than {@link #LARGEST} get heap buffers of
 * their own, and at most {@link #RETAINED_BYTES} of idle buffers are kept, so the pool stays small however the
 * client sizes its requests. Thread-safe.
 */
final class BufferPool {
    /** The largest payload served from the pool. */
    static final int LARGEST = 2 << 20;
    /** Idle buffers kept for reuse, in bytes at most. */
    static final int RETAINED_BYTES = 8 << 20;
    private static final int SMALLEST_SHIFT = 12;

    /** Idle buffers by size class: 4 KiB, 8 KiB, ... {@link #LARGEST}. */
    private final List<ArrayDeque<ByteBuffer>> idle = Stream.generate(ArrayDeque<ByteBuffer>::new)
            .limit(Integer.numberOfTrailingZeros(LARGEST) - SMALLEST_SHIFT + 1).toList();
    private int retained;

    /** A buffer of {@code length} bytes (position 0, limit {@code length}); give it back when done with it. */
    ByteBuffer take(int length) {
        if (length > LARGEST) {
            return ByteBuffer.allocate(length);
        }
        int size = sizeClass(length);
        synchronized (this) {
            ByteBuffer b = idle.get(index(size)).pollFirst();
            if (b != null) {
                retained -= size;
                return b.clear().limit(length);
            }
        }
        return ByteBuffer.allocateDirect(size).limit(length);
    }

    /** Returns a buffer {@link #take} gave; the caller no longer uses it. */
    void give(ByteBuffer b) {
        if (b == null || !b.isDirect()) {
            return;
        }
        int size = b.capacity();
        synchronized (this) {
            if (retained + size <= RETAINED_BYTES) {
                idle.get(index(size)).addFirst(b);
                retained += size;
            }
        }
    }

    private static int sizeClass(int length) {
        return Math.max(1 << SMALLEST_SHIFT, Integer.highestOneBit(Math.max(1, length - 1)) << 1);
    }

    private static int index(int size) {
        return Integer.numberOfTrailingZeros(size) - SMALLEST_SHIFT;
    }
}
