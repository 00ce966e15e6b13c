package imago.api.spi;

import imago.api.ReadOnlyImageException;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * When a {@link LayeredImage}'s requests may run: a read/write lock whose read side every request holds and whose
 * write side resize, the snapshot operations, backing-file rewrites, check and close hold (they change what requests
 * see), the closed flag, and the order in which a closing image releases what it holds.
 */
final class ImageLifecycle {
    private final String name;
    private final boolean readOnly;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile boolean closed;

    ImageLifecycle(String name, boolean readOnly) {
        this.name = name;
        this.readOnly = readOnly;
    }

    /** The lock a request holds while it runs, for the hottest paths that take it without a lambda. */
    Lock requests() {
        return lock.readLock();
    }

    /** Runs {@code step} on the open image, alongside other requests. */
    <T> T shared(Locked.Step<T> step) throws IOException {
        return Locked.run(lock.readLock(), this::ensureOpen, step);
    }

    /** Runs {@code step} on the writable image, alongside other requests. */
    <T> T writing(Locked.Step<T> step) throws IOException {
        return Locked.run(lock.readLock(), this::ensureWritable, step);
    }

    /** Runs {@code step} on the writable image with every other request excluded (it changes what they see). */
    <T> T exclusive(Locked.Step<T> step) throws IOException {
        return Locked.run(lock.writeLock(), this::ensureWritable, step);
    }

    /** Runs {@code step} on the open image, writable or not, with every other request excluded. */
    <T> T alone(Locked.Step<T> step) throws IOException {
        return Locked.run(lock.writeLock(), this::ensureOpen, step);
    }

    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(name + ": image is closed");
        }
    }

    void ensureWritable() throws ReadOnlyImageException {
        ensureOpen();
        if (readOnly) {
            throw new ReadOnlyImageException(name, "image is opened read-only");
        }
    }

    /**
     * Closes the image once: with every request excluded, runs {@code last} (the layer's final flush) and then
     * closes {@code resources} in order, each even if an earlier one failed. A later call does nothing.
     *
     * @throws IOException the first failure, with the later ones suppressed in it
     */
    void close(Locked.Step<Void> last, List<? extends AutoCloseable> resources) throws IOException {
        lock.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            IOException failure = null;
            try {
                last.run();
            } catch (IOException e) {
                failure = e;
            }
            for (AutoCloseable c : resources) {
                try {
                    c.close();
                } catch (Exception e) {
                    IOException io = e instanceof IOException x ? x : new IOException(e);
                    if (failure == null) {
                        failure = io;
                    } else {
                        failure.addSuppressed(io);
                    }
                }
            }
            if (failure != null) {
                throw failure;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }
}
