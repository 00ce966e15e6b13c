package imago.api.spi;

import imago.api.Mapping;
import java.io.IOException;
import java.util.Objects;
import java.util.concurrent.locks.Lock;

/**
 * A write whose {@link #mapping() data mapping} the layer's metadata does not name yet (new blocks or clusters at
 * the end of the file, bits still to set in a block's bitmap), holding the layer's lock from
 * {@link FormatInstance#beginWrite} until the ticket closes, so that allocation, the data write and the metadata
 * change are one step to other writers. A format says what its commit does ({@link #onCommit}: point its tables at
 * the written bytes, in its own crash-safe order) and what an abort gives back ({@link #onAbort}: the space it took);
 * this class keeps the protocol every such write shares:
 *
 * <ul>
 *   <li>{@link #commit()} runs {@link #onCommit} at most once (a second commit is a caller mistake);</li>
 *   <li>{@link #close()} runs {@link #onAbort} when nothing was committed (after a failed commit too), then unlocks
 *       the lock, whatever the hooks throw; a second close does nothing.</li>
 * </ul>
 *
 * <p>{@code beginWrite} takes the lock and hands it to the ticket it returns; if it fails before that, it unlocks
 * the lock itself:
 *
 * <pre>{@code
 * lock.lock();
 * boolean handedOver = false;
 * try {
 *     ...  // allocate, copy what the write does not cover from below
 *     WriteTicket t = new AllocatingWriteTicket(mapping, lock) {
 *         protected void onCommit() throws IOException { ... }  // name the new block
 *         protected void onAbort() throws IOException { ... }   // give it back
 *     };
 *     handedOver = true;
 *     return t;
 * } finally {
 *     if (!handedOver) {
 *         lock.unlock();
 *     }
 * }
 * }</pre>
 *
 * <p>A ticket is one object: a format subclasses it (often anonymously, capturing what its hooks need) rather than
 * passing callbacks, so that an allocating write costs no more than its ticket. Like every ticket it is used by the
 * thread that began the write, which is the thread that holds the lock.
 */
public abstract class AllocatingWriteTicket implements WriteTicket {
    private final Mapping.Data mapping;
    private final Lock lock;
    private boolean committed;
    private boolean closed;

    /**
     * A ticket for a write to {@code mapping} that holds {@code lock} (locked by the caller) until it is closed.
     *
     * @param mapping where the bytes go
     * @param lock the layer's lock, held by the calling thread; {@link #close()} unlocks it
     */
    protected AllocatingWriteTicket(Mapping.Data mapping, Lock lock) {
        this.mapping = Objects.requireNonNull(mapping, "mapping");
        this.lock = Objects.requireNonNull(lock, "lock");
    }

    /**
     * Points the layer's metadata at the written bytes (lock held). If it throws, the write is not committed and
     * {@link #close()} aborts it.
     *
     * @throws IOException if the metadata cannot be changed; the layer must stay consistent
     */
    protected abstract void onCommit() throws IOException;

    /**
     * Gives back what the write took (lock held), called by {@link #close()} when nothing was committed.
     *
     * @implSpec The default does nothing (the write took nothing that must be given back).
     * @throws IOException if giving back fails
     */
    protected void onAbort() throws IOException {
    }

    @Override
    public final Mapping.Data mapping() {
        return mapping;
    }

    /**
     * Runs {@link #onCommit}.
     *
     * @throws IllegalStateException if the ticket was committed before
     * @throws IOException as {@link #onCommit} throws it
     */
    @Override
    public final void commit() throws IOException {
        if (committed) {
            throw new IllegalStateException("committed twice");
        }
        onCommit();
        committed = true;
    }

    /**
     * Aborts ({@link #onAbort}) unless committed, then unlocks the lock; a second close does nothing.
     *
     * @throws IOException as {@link #onAbort} throws it (the lock is unlocked all the same)
     */
    @Override
    public final void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (!committed) {
                onAbort();
            }
        } finally {
            lock.unlock();
        }
    }
}
