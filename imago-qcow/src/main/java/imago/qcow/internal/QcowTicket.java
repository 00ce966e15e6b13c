package imago.qcow.internal;

import imago.api.Mapping;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.util.concurrent.locks.Lock;

/**
 * An allocating write: it holds the image's lock, taken by {@code beginWrite}, until it is closed; a commit points
 * the tables at the new clusters, a close without one gives them back.
 */
final class QcowTicket implements WriteTicket {
    /** What a ticket does when committed or aborted. */
    @FunctionalInterface
    interface Step {
        void run() throws IOException;
    }

    private final Mapping.Data mapping;
    private final Lock lock;
    private final Step onCommit;
    private final Step onAbort;
    private boolean committed;
    private boolean closed;

    QcowTicket(Mapping.Data mapping, Lock lock, Step onCommit, Step onAbort) {
        this.mapping = mapping;
        this.lock = lock;
        this.onCommit = onCommit;
        this.onAbort = onAbort;
    }

    @Override
    public Mapping.Data mapping() {
        return mapping;
    }

    @Override
    public void commit() throws IOException {
        if (committed) {
            throw new IllegalStateException("committed twice");
        }
        onCommit.run();
        committed = true;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (!committed) {
                onAbort.run();
            }
        } finally {
            lock.unlock();
        }
    }
}
