package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;
import static imago.storage.file.internal.Failures.unsupported;

import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.util.Optional;

/**
 * Where a file's data and holes lie, by {@code lseek(SEEK_DATA)} and {@code lseek(SEEK_HOLE)} on its descriptor.
 * A file system that refuses the calls is remembered, and from then on this seeker cannot tell.
 */
final class HoleSeeker {
    private final String name;
    private final FileHandle handle;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    // set once, read without locking
    private volatile boolean refused;

    HoleSeeker(String name, FileHandle handle, int fd) {
        this.name = name;
        this.handle = handle;
        this.fd = fd;
    }

    /**
     * The data or hole run at {@code offset}, at most {@code maxLength} bytes; empty where this seeker cannot tell
     * (no native access, a file system that refuses the calls or answers what we do not understand).
     */
    Optional<StorageExtent> extent(long offset, long maxLength) throws IOException {
        if (fd < 0 || refused) {
            handle.checkOpen();
            return Optional.empty();
        }
        long data;
        long hole;
        handle.enter();
        try {
            try {
                data = LibC.lseek(fd, offset, LibC.SEEK_DATA);
            } catch (ErrnoException e) {
                if (e.errno() == Errno.ENXIO) {
                    return Optional.of(new StorageExtent(offset, maxLength, false)); // a hole up to and past the end
                }
                if (!unsupported(e.errno())) {
                    throw failure(name, "lseek(SEEK_DATA) at " + offset, e);
                }
                refused = true;
                return Optional.empty();
            }
            if (data > offset) {
                return Optional.of(new StorageExtent(offset, Math.min(maxLength, data - offset), false));
            }
            try {
                hole = LibC.lseek(fd, offset, LibC.SEEK_HOLE);
            } catch (ErrnoException e) {
                if (e.errno() == Errno.ENXIO) {
                    return Optional.of(new StorageExtent(offset, maxLength, false)); // truncated meanwhile
                }
                throw failure(name, "lseek(SEEK_HOLE) at " + offset, e);
            }
        } finally {
            handle.exit();
        }
        if (data < offset || hole <= offset) {
            return Optional.empty(); // a file system we do not understand
        }
        return Optional.of(new StorageExtent(offset, Math.min(maxLength, hole - offset), true));
    }

    /** Behaves as on a file system that refuses the calls (for tests). */
    void refuse() {
        refused = true;
    }
}
