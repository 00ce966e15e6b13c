package imago.vpc.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The sector bitmaps of allocated blocks, loaded when first needed and kept up to a byte budget (clean ones are
 * dropped past it; changed ones stay until {@link #writeDirty} writes them). Bit {@code n} is sector {@code n}
 * of the block, most significant bit of byte 0 first.
 */
final class VpcBitmaps {
    /** Cached bitmap bytes beyond which clean bitmaps are dropped: 16 MiB, 64 GiB of 2 MiB blocks. */
    static final long BUDGET = 16L << 20;

    private final Storage storage;
    private final int length;
    private final VpcBat bat;
    private final ConcurrentHashMap<Integer, byte[]> cache = new ConcurrentHashMap<>();
    private final AtomicLong cachedBytes = new AtomicLong();
    private final ReentrantLock lock = new ReentrantLock();
    /** Blocks whose cached bitmap differs from the file; guarded by {@link #lock}. */
    private final Set<Integer> dirty = new HashSet<>();

    VpcBitmaps(Storage storage, int length, VpcBat bat) {
        this.storage = storage;
        this.length = length;
        this.bat = bat;
    }

    /** The bitmap of allocated {@code block} (the cached array: callers that change it call {@link #changed}). */
    byte[] get(int block) throws IOException {
        byte[] b = cache.get(block);
        if (b != null) {
            return b;
        }
        try {
            b = cache.computeIfAbsent(block, k -> {
                byte[] bits = new byte[length];
                try {
                    storage.read(ByteBuffer.wrap(bits), bat.bitmapOffset(k));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                cachedBytes.addAndGet(length);
                return bits;
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        if (cachedBytes.get() > BUDGET) {
            evictClean();
        }
        return b;
    }

    /** Caches the bitmap of a block just written (its bitmap is in the file already). */
    void putWritten(int block, byte[] bits) {
        if (cache.put(block, bits) == null) {
            cachedBytes.addAndGet(length);
        }
    }

    /** {@code bits}, the cached bitmap of {@code block}, was changed: keep it and write it on the next flush. */
    void changed(int block, byte[] bits) {
        lock.lock();
        try {
            if (cache.put(block, bits) == null) {
                cachedBytes.addAndGet(length);
            }
            dirty.add(block);
        } finally {
            lock.unlock();
        }
    }

    /** Forgets {@code block} (it is no longer allocated). */
    void forget(int block) {
        lock.lock();
        try {
            dirty.remove(block);
            if (cache.remove(block) != null) {
                cachedBytes.addAndGet(-length);
            }
        } finally {
            lock.unlock();
        }
    }

    boolean hasDirty() {
        lock.lock();
        try {
            return !dirty.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /** Writes the changed bitmaps to their blocks. */
    void writeDirty() throws IOException {
        lock.lock();
        try {
            for (var it = dirty.iterator(); it.hasNext(); ) {
                int block = it.next();
                byte[] bits = cache.get(block);
                storage.write(ByteBuffer.wrap(bits.clone()), bat.bitmapOffset(block));
                it.remove();
            }
        } finally {
            lock.unlock();
        }
    }

    private void evictClean() {
        lock.lock();
        try {
            for (var it = cache.keySet().iterator(); it.hasNext(); ) {
                if (!dirty.contains(it.next())) {
                    it.remove();
                    cachedBytes.addAndGet(-length);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** Whether sector {@code n}'s bit is set. */
    static boolean test(byte[] bits, int n) {
        return (bits[n >>> 3] & (0x80 >>> (n & 7))) != 0;
    }

    /** Sets the bits of sectors {@code [from, to)}. */
    static void set(byte[] bits, int from, int to) {
        for (int n = from; n < to; n++) {
            bits[n >>> 3] |= (byte) (0x80 >>> (n & 7));
        }
    }

    /** The first sector in {@code [from, to)} whose bit is not {@code value}, or {@code to}. */
    static int runEnd(byte[] bits, int from, int to, boolean value) {
        int n = from;
        int full = value ? 0xFF : 0;
        while (n < to) {
            if ((n & 7) == 0 && n + 8 <= to && (bits[n >>> 3] & 0xFF) == full) {
                n += 8;
            } else if (test(bits, n) == value) {
                n++;
            } else {
                return n;
            }
        }
        return to;
    }
}
