package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;

import imago.api.ImageException;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * An open storage's native descriptor and its guard: native calls run between {@link #enter()} and
 * {@link #exit()}, and {@link #closeDescriptor()} waits for them, so a descriptor is never reused under
 * a call. Without native access the descriptor is -1 and only the closed state is kept.
 */
final class FileHandle {
    private final String name;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    /** Native calls hold the read lock; close takes the write lock, so a descriptor is never reused under a call. */
    private final ReentrantReadWriteLock fdGuard = new ReentrantReadWriteLock();
    private final AtomicBoolean closed = new AtomicBoolean();

    FileHandle(String name, int fd) {
        this.name = name;
        this.fd = fd;
    }

    String name() {
        return name;
    }

    /** The native descriptor, or -1 without native access. */
    int fd() {
        return fd;
    }

    /** Marks the storage closed; {@code false} if it already was. */
    boolean markClosed() {
        return closed.compareAndSet(false, true);
    }

    void enter() throws IOException {
        fdGuard.readLock().lock();
        if (closed.get()) {
            fdGuard.readLock().unlock();
            throw closedException();
        }
    }

    void exit() {
        fdGuard.readLock().unlock();
    }

    void checkOpen() throws IOException {
        if (closed.get()) {
            throw closedException();
        }
    }

    private ImageException closedException() {
        return new ImageException(name, "storage is closed");
    }

    /** Closes the descriptor once the native calls in flight are done; releases the OFD (or flock) locks. */
    void closeDescriptor() throws ImageException {
        fdGuard.writeLock().lock();
        try {
            LibC.close(fd); // releases the OFD (or flock) locks
        } catch (ErrnoException e) {
            throw failure(name, "close", e);
        } finally {
            fdGuard.writeLock().unlock();
        }
    }
}
