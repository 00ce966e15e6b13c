package imago.storage.memory;

import imago.api.spi.StorageExtent;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The bytes of one memory storage, shared by every handle opened on it: a sparse map from chunk index
 * to a chunk of {@code chunkSize} bytes, and a size.
 *
 * <p>Invariant: every byte at or past {@code size} is zero, whether its chunk exists or not. Writes
 * past the end therefore need not clear anything, and reads need not look at the size: chunks that do
 * not exist read as zeroes, and so does the tail of the last chunk. Shrinking restores the invariant by
 * dropping the chunks past the new end and clearing the tail of the last partial one.
 *
 * <p>Requests on disjoint ranges run concurrently under the shared side of {@link #lock}: two requests
 * may copy into different parts of the same chunk, and a chunk is created with
 * {@code putIfAbsent} so that all of them see the same array. A chunk is dropped only by a request that
 * covers it entirely (so no request on a disjoint range is inside it) or under the exclusive side of the
 * lock (resize), which is the only place the size can go down.
 */
final class MemoryContent {
    private final int chunkSize;
    private final int shift;
    private final long mask;
    /** Ordered, so that holes and data runs are found without visiting every chunk index. */
    private final ConcurrentSkipListMap<Long, byte[]> chunks = new ConcurrentSkipListMap<>();
    /** {@code chunks.size()} is linear in a skip list; this counts insertions and removals instead. */
    private final AtomicLong chunkCount = new AtomicLong();
    private final AtomicLong size = new AtomicLong();
    /** Shared: every request. Exclusive: resize, the only operation that may lower the size. */
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();

    /** @param chunkSize a power of two */
    MemoryContent(int chunkSize) {
        if (chunkSize < 1 || Integer.bitCount(chunkSize) != 1) {
            throw new IllegalArgumentException("chunk size must be a power of two, got " + chunkSize);
        }
        this.chunkSize = chunkSize;
        this.shift = Integer.numberOfTrailingZeros(chunkSize);
        this.mask = chunkSize - 1L;
    }

    int chunkSize() {
        return chunkSize;
    }

    long size() {
        return size.get();
    }

    long allocatedBytes() {
        return chunkCount.get() * chunkSize;
    }

    /** Fills {@code dst} from {@code offset}; missing chunks and bytes past the end read as zeroes. */
    void read(ByteBuffer dst, long offset) {
        lock.readLock().lock();
        try {
            long pos = offset;
            while (dst.hasRemaining()) {
                int in = (int) (pos & mask);
                int n = Math.min(chunkSize - in, dst.remaining());
                byte[] chunk = chunks.get(pos >>> shift);
                if (chunk == null) {
                    MemorySegment.ofBuffer(dst).asSlice(0, n).fill((byte) 0);
                    dst.position(dst.position() + n);
                } else {
                    dst.put(chunk, in, n);
                }
                pos += n;
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Writes all of {@code src} at {@code offset}, allocating chunks and growing the size as needed. */
    void write(ByteBuffer src, long offset) {
        int length = src.remaining();
        if (length == 0) {
            return;
        }
        lock.readLock().lock();
        try {
            long pos = offset;
            while (src.hasRemaining()) {
                int in = (int) (pos & mask);
                int n = Math.min(chunkSize - in, src.remaining());
                src.get(chunkForWrite(pos >>> shift), in, n);
                pos += n;
            }
            // after the data: a reader that sees the new size finds the bytes in place
            size.accumulateAndGet(offset + length, Math::max);
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Makes {@code [offset, offset + length)} read as zeroes. With {@code unmap}, chunks the range covers
     * entirely are dropped; otherwise existing chunks are zero-filled and stay allocated, as a zero write
     * that may not unmap keeps its space reserved. Chunks that do not exist are never created. With
     * {@code extend}, the size grows to the end of the range, as a write would.
     */
    void zero(long offset, long length, boolean unmap, boolean extend) {
        if (length == 0) {
            return;
        }
        long end = offset + length;
        lock.readLock().lock();
        try {
            if (unmap) {
                long firstWhole = ceilChunks(offset);
                long endWhole = end >>> shift;
                if (firstWhole < endWhole) {
                    for (Iterator<Long> it = chunks.subMap(firstWhole, endWhole).keySet().iterator(); it.hasNext();) {
                        if (chunks.remove(it.next()) != null) {
                            chunkCount.decrementAndGet();
                        }
                    }
                    fillExisting(offset, firstWhole << shift);
                    fillExisting(endWhole << shift, end);
                } else {
                    fillExisting(offset, end);
                }
            } else {
                fillExisting(offset, end);
            }
            if (extend) {
                size.accumulateAndGet(end, Math::max);
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Zero-fills the parts of {@code [from, to)} that lie in existing chunks. */
    private void fillExisting(long from, long to) {
        if (from >= to) {
            return;
        }
        for (var e : chunks.subMap(from >>> shift, true, (to - 1) >>> shift, true).entrySet()) {
            long chunkStart = e.getKey() << shift;
            int a = (int) (Math.max(from, chunkStart) - chunkStart);
            int b = (int) (Math.min(to, chunkStart + chunkSize) - chunkStart);
            Arrays.fill(e.getValue(), a, b, (byte) 0);
        }
    }

    /**
     * Sets the size. Shrinking drops the chunks past the new end and clears the tail of the last one;
     * growing with {@code allocate} creates every chunk of the new space.
     */
    void resize(long newSize, boolean allocate) {
        lock.writeLock().lock();
        try {
            long old = size.get();
            if (newSize < old) {
                for (Iterator<Long> it = chunks.tailMap(ceilChunks(newSize)).keySet().iterator(); it.hasNext();) {
                    if (chunks.remove(it.next()) != null) {
                        chunkCount.decrementAndGet();
                    }
                }
                int in = (int) (newSize & mask);
                byte[] last = in == 0 ? null : chunks.get(newSize >>> shift);
                if (last != null) {
                    Arrays.fill(last, in, chunkSize, (byte) 0);
                }
            } else if (allocate && newSize > old) {
                for (long index = old >>> shift, lastIndex = (newSize - 1) >>> shift; index <= lastIndex; index++) {
                    chunkForWrite(index);
                }
            }
            size.set(newSize);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Whether the bytes from {@code offset} are data (their chunk exists) or a hole, for at most
     * {@code maxLength} bytes; runs stop at the size, and everything past it is a hole.
     */
    StorageExtent dataExtent(long offset, long maxLength) {
        lock.readLock().lock();
        try {
            long size = this.size.get();
            if (offset >= size) {
                return new StorageExtent(offset, maxLength, false);
            }
            long end = offset + Math.min(maxLength, size - offset);
            long index = offset >>> shift;
            if (chunks.containsKey(index)) {
                long next = index + 1;
                for (long key : chunks.tailMap(next).keySet()) {
                    if (key != next || chunkStart(next) >= end) {
                        break;
                    }
                    next++;
                }
                return new StorageExtent(offset, Math.min(end, chunkStart(next)) - offset, true);
            }
            Long nextData = chunks.higherKey(index);
            long holeEnd = nextData == null ? end : Math.min(end, chunkStart(nextData));
            return new StorageExtent(offset, holeEnd - offset, false);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The first byte of chunk {@code index}, saturating instead of overflowing near 2^63. */
    private long chunkStart(long index) {
        return index > (Long.MAX_VALUE >>> shift) ? Long.MAX_VALUE : index << shift;
    }

    /** The number of chunks needed to hold {@code bytes} bytes: the index of the first chunk wholly past them. */
    private long ceilChunks(long bytes) {
        return (bytes >>> shift) + ((bytes & mask) == 0 ? 0 : 1);
    }

    private byte[] chunkForWrite(long index) {
        byte[] chunk = chunks.get(index);
        if (chunk != null) {
            return chunk;
        }
        byte[] fresh = new byte[chunkSize];
        byte[] raced = chunks.putIfAbsent(index, fresh);
        if (raced != null) {
            return raced;
        }
        chunkCount.incrementAndGet();
        return fresh;
    }
}
