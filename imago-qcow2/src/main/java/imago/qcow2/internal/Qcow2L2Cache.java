package imago.qcow2.internal;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A bounded cache of decoded L2 tables keyed by their host offset, with CLOCK (second chance)
 * eviction. A hit takes no lock: a map lookup and, at most, a volatile write of the reference bit.
 * A miss installs a pending slot first, so that one table is read once however many threads ask
 * for it at the same time; the others wait for that read.
 */
final class Qcow2L2Cache {

    /** Reads one table. */
    @FunctionalInterface
    interface Loader {
        long[] load(long hostOffset) throws IOException;
    }

    private static final class Slot {
        final CompletableFuture<long[]> table = new CompletableFuture<>();
        volatile boolean referenced = true;
    }

    private final int capacity;
    private final ConcurrentHashMap<Long, Slot> slots = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<Long> clock = new ConcurrentLinkedQueue<>();
    private final ReentrantLock evictLock = new ReentrantLock();

    /** A cache holding at most {@code capacity} tables (at least one). */
    Qcow2L2Cache(int capacity) {
        this.capacity = Math.max(1, capacity);
    }

    int capacity() {
        return capacity;
    }

    int size() {
        return slots.size();
    }

    /** Drops every table (after the tables changed behind the cache, e.g. by a repair). */
    void clear() {
        evictLock.lock();
        try {
            slots.clear();
            clock.clear();
        } finally {
            evictLock.unlock();
        }
    }

    /** The table at {@code hostOffset}, loaded with {@code loader} on a miss. */
    long[] get(long hostOffset, Loader loader) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Slot slot = slots.get(hostOffset);
            if (slot != null) {
                if (!slot.referenced) {
                    slot.referenced = true;
                }
                long[] t = slot.table.getNow(null);
                if (t != null) {
                    return t;
                }
                try {
                    return slot.table.join();
                } catch (CompletionException e) {
                    // the loading thread failed, removed the slot and reported it; try ourselves once,
                    // so that our caller gets its own exception
                    if (attempt > 0) {
                        throw new IOException("L2 table at " + hostOffset + " could not be read", e.getCause());
                    }
                    continue;
                }
            }
            Slot mine = new Slot();
            if (slots.putIfAbsent(hostOffset, mine) != null) {
                continue;
            }
            long[] t;
            try {
                t = loader.load(hostOffset);
            } catch (IOException | RuntimeException | Error e) {
                slots.remove(hostOffset, mine);
                mine.table.completeExceptionally(e);
                throw e;
            }
            mine.table.complete(t);
            clock.add(hostOffset);
            if (slots.size() > capacity) {
                evict();
            }
            return t;
        }
    }

    /** Forgets the table at {@code hostOffset}: its cluster was freed and may be reused for anything. */
    void invalidate(long hostOffset) {
        slots.remove(hostOffset);
    }

    private void evict() {
        evictLock.lock();
        try {
            int budget = 2 * clock.size() + 2;
            while (slots.size() > capacity && budget-- > 0) {
                Long key = clock.poll();
                if (key == null) {
                    return;
                }
                Slot s = slots.get(key);
                if (s == null) {
                    continue;
                }
                if (s.referenced) {
                    s.referenced = false;
                    clock.add(key);
                } else {
                    slots.remove(key, s);
                }
            }
        } finally {
            evictLock.unlock();
        }
    }
}
