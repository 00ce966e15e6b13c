package imago.cli.convert;

import java.io.InterruptedIOException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Whose turn it is to write, among the tasks of a {@link Converter} that copy chunks at once: in guest order, as
 * qemu-img convert writes by default (so that a new image's clusters are allocated in guest order), or as they come
 * ({@code -W}); and the failure of one chunk, which stops the others.
 */
final class WriteOrder {
    /** Whether chunks are written in guest order. */
    private final boolean inOrder;
    /** Guards {@link #turn}. */
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition turnChanged = lock.newCondition();
    /** The chunk whose writes may go to the target now (guarded by {@link #lock}). */
    private long turn;
    /** Set when a chunk fails: the others stop, and those waiting for their turn give up. */
    private final AtomicBoolean failed = new AtomicBoolean();

    /** @param inOrder whether chunks write in guest order; if not, every chunk may write at any time */
    WriteOrder(boolean inOrder) {
        this.inOrder = inOrder;
    }

    /** Whether a chunk has failed. */
    boolean failed() {
        return failed.get();
    }

    /** Stops every chunk: those still running end after their current step, those waiting give up. */
    void fail() {
        failed.set(true);
        lock.lock();
        try {
            turnChanged.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits until chunk {@code k} may write (in order: the chunks before it are done).
     *
     * @throws Aborted if another chunk failed meanwhile
     */
    void awaitTurn(long k) throws InterruptedIOException {
        if (!inOrder) {
            return;
        }
        lock.lock();
        try {
            while (turn < k) {
                if (failed.get()) {
                    throw new Aborted();
                }
                turnChanged.await();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        } finally {
            lock.unlock();
        }
    }

    /** Passes the turn on from chunk {@code k}, once it is written (after waiting for it, if it wrote nothing). */
    void endTurn(long k) throws InterruptedIOException {
        if (!inOrder) {
            return;
        }
        awaitTurn(k);
        lock.lock();
        try {
            turn = k + 1;
            turnChanged.signalAll();
        } finally {
            lock.unlock();
        }
    }
}
