package imago.qcow2.internal;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Who may change the metadata, and who may write guest data where: the write claims.
 *
 * <ul>
 * <li>The <em>allocation lock</em> guards every metadata change. An allocating write holds it from its begin to
 *     its commit ({@link Qcow2WriteTicket.Held}), so that no other write sees or allocates the same cluster
 *     meanwhile.
 * <li>A write into a fresh run of host clusters for guest clusters that held nothing is written without the
 *     lock, so that writers of disjoint ranges copy in parallel (as QEMU lets coroutines run during the data
 *     write): its guest clusters are <em>claimed</em> in flight ({@link Qcow2WriteTicket.InFlight}), and every
 *     other user of the lock waits for the clusters it touches ({@link #awaitClusters}); operations on many
 *     tables at once wait until none is in flight ({@link #awaitQuiet}).
 * <li>Each write in place holds the <em>in-place</em> lock's read side ({@link Qcow2WriteTicket.InPlace}); its
 *     write side is taken before freed clusters get refcount 0, so that no write lands in a cluster after it
 *     was freed, and by {@link #exclusively} operations.
 * </ul>
 *
 * <p>Lock order: the allocation lock, then the in-place write lock; the in-place read lock is taken under the
 * allocation lock and kept after it is released.
 */
final class Qcow2Claims {
    private final ReentrantLock allocLock = new ReentrantLock();
    private final ReentrantReadWriteLock inPlace = new ReentrantReadWriteLock();
    /** Guest clusters of the writes in flight (guarded by allocLock). */
    private final Set<Long> inFlightClusters = new HashSet<>();
    private final Condition inFlightDone = allocLock.newCondition();
    /** How many writes are in flight (changed under allocLock, read without it). */
    private volatile int inFlightWrites;
    /** Whether an allocating write holds the lock (a {@link Qcow2WriteTicket.Held}; guarded by allocLock). */
    private boolean holding;

    void lock() {
        allocLock.lock();
    }

    void unlock() {
        allocLock.unlock();
    }

    /** Whether an allocating write of this thread holds the allocation lock between its begin and commit. */
    boolean holding() {
        return holding && allocLock.isHeldByCurrentThread();
    }

    /** Called under the lock by the allocating write that keeps it ({@link Qcow2WriteTicket.Held}). */
    void hold() {
        holding = true;
    }

    /** Ends what {@link #hold} began and releases the write's hold of the lock. */
    void releaseHold() {
        holding = false;
        allocLock.unlock();
    }

    /** Takes the in-place read lock for a write in place (under the allocation lock). */
    void beginInPlace() {
        inPlace.readLock().lock();
    }

    void endInPlace() {
        inPlace.readLock().unlock();
    }

    /** Takes the in-place write lock: no write in place runs until {@link #allowInPlace}. Under allocLock. */
    void excludeInPlace() {
        inPlace.writeLock().lock();
    }

    void allowInPlace() {
        inPlace.writeLock().unlock();
    }

    /** Claims guest clusters {@code [first, first + count)} for a write in flight. Under allocLock. */
    void claim(long first, int count) {
        for (int k = 0; k < count; k++) {
            inFlightClusters.add(first + k);
        }
        inFlightWrites++;
    }

    /** Releases what {@link #claim} claimed, and wakes those who wait for it. Under allocLock. */
    void release(long first, int count) {
        for (int k = 0; k < count; k++) {
            inFlightClusters.remove(first + k);
        }
        inFlightWrites--;
        inFlightDone.signalAll();
    }

    /** Waits (under allocLock, which it releases meanwhile) until no write in flight covers clusters [first, last]. */
    void awaitClusters(long first, long last) {
        while (inFlightWrites > 0 && covered(first, last)) {
            inFlightDone.awaitUninterruptibly();
        }
    }

    private boolean covered(long first, long last) {
        for (long c = first; c <= last; c++) {
            if (inFlightClusters.contains(c)) {
                return true;
            }
        }
        return false;
    }

    /** Waits (under allocLock) until no write is in flight: for operations that change many tables at once. */
    void awaitQuiet() {
        while (inFlightWrites > 0) {
            inFlightDone.awaitUninterruptibly();
        }
    }

    /** An action on many tables at once. */
    @FunctionalInterface
    interface TableAction<T> {
        T run() throws IOException;
    }

    /**
     * Runs {@code action} with every other writer excluded: the allocation lock, no write in flight, pending
     * metadata flushed ({@code flush}), and no in-place write (the snapshot operations change many tables at once).
     */
    <T> T exclusively(Qcow2Action flush, TableAction<T> action) throws IOException {
        allocLock.lock();
        try {
            awaitQuiet();
            flush.run();
            inPlace.writeLock().lock();
            try {
                return action.run();
            } finally {
                inPlace.writeLock().unlock();
            }
        } finally {
            allocLock.unlock();
        }
    }
}
