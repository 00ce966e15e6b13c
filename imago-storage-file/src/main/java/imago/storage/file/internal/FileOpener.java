package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;
import static imago.storage.file.internal.Failures.message;

import imago.api.Feature;
import imago.api.ImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;

/**
 * Opens a file for the file storage: natively with libc {@code open} (one descriptor that carries the
 * image locks, and a channel on {@code /proc/self/fd/N}), or portably with a {@link FileChannel} and a
 * {@link PortableLock}. A failed open leaves nothing open.
 */
final class FileOpener {

    /**
     * What an open produced, handed to the storage.
     *
     * @param fd the native descriptor, or -1 without native access
     * @param blockDevice block devices report their size through lseek(SEEK_END), not st_size
     * @param portableLock without native access, the lock shared with the other storages of this JVM on the file
     */
    record Opened(Path path, boolean readOnly, boolean direct, int fd, boolean blockDevice, FileChannel channel,
            PortableLock portableLock) {
    }

    private FileOpener() {
    }

    /** Opens natively when {@code nativeAccess} is set and libc is bound, else portably. */
    static Opened open(StorageLocation location, StorageOptions options, boolean nativeAccess) throws IOException {
        Path path = location.path();
        if (nativeAccess && LibC.available()) {
            return openNative(location, path, options);
        }
        return openPortable(location, path, options);
    }

    private static Opened openNative(StorageLocation location, Path path, StorageOptions options)
            throws IOException {
        String name = location.name();
        boolean writable = options.writable();
        // O_CREAT without O_TRUNC: an existing file is truncated only once we hold its lock
        // O_NONBLOCK: opening a FIFO that an image names must not hang; regular files ignore it
        int flags = (writable ? LibC.O_RDWR : LibC.O_RDONLY) | LibC.O_CLOEXEC | LibC.O_NONBLOCK
                | (options.create() ? LibC.O_CREAT : 0) | (options.directIO() ? LibC.oDirect() : 0);
        int fd;
        try {
            fd = LibC.open(path.toString(), flags, 0666);
        } catch (ErrnoException e) {
            throw switch (e.errno()) {
                case Errno.ENOENT -> new NoSuchFileException(name);
                case Errno.EACCES, Errno.EPERM -> new AccessDeniedException(name, null, Errno.describe(e.errno()));
                case Errno.EISDIR -> new ImageException(name, "Is a directory");
                case Errno.EINVAL -> options.directIO()
                        ? directUnsupported(name, "the file system does not support O_DIRECT")
                        : failure(name, writable ? "open for writing" : "open for reading", e);
                default -> failure(name, writable ? "open for writing" : "open for reading", e);
            };
        }
        String opened = writable ? "open for writing" : "open for reading";
        boolean done = false;
        try {
            LibC.Stat stat = LibC.fstat(fd);
            if (stat.isDirectory()) {
                throw new ImageException(name, "Is a directory");
            }
            if (!stat.isRegularFile() && !stat.isBlockDevice()) {
                throw new ImageException(name, "not a regular file or block device");
            }
            if (options.lock()) {
                ImageLocks.lockNative(name, fd, writable, options.shareWrites(), options.resizes());
            }
            if (options.create()) {
                LibcSpace.ftruncate(fd, 0);
            }
            FileChannel channel = ChannelIo.channelOn(name, fd, path, writable);
            Opened storage = new Opened(path, !writable, options.directIO(), fd, stat.isBlockDevice(), channel, null);
            done = true;
            return storage;
        } catch (ErrnoException e) {
            throw failure(name, opened, e);
        } finally {
            if (!done) {
                try {
                    LibC.close(fd);
                } catch (ErrnoException ignored) {
                    // the open already failed; that failure is the one to report
                }
            }
        }
    }

    private static Opened openPortable(StorageLocation location, Path path, StorageOptions options)
            throws IOException {
        String name = location.name();
        if (options.directIO()) {
            throw directUnsupported(name, "direct I/O needs native access (java.lang.foreign on Linux): "
                    + Objects.requireNonNullElse(LibC.unavailableReason(), "disabled"));
        }
        if (Files.isDirectory(path)) {
            throw new ImageException(name, "Is a directory");
        }
        if (Files.exists(path) && !Files.isRegularFile(path)) {
            throw new ImageException(name, "not a regular file"); // a FIFO would block the open
        }
        boolean writable = options.writable();
        Set<StandardOpenOption> opts = EnumSet.of(StandardOpenOption.READ);
        if (writable) {
            opts.add(StandardOpenOption.WRITE);
        }
        if (options.create()) {
            opts.add(StandardOpenOption.CREATE); // truncated below, once we hold the lock
        }
        FileChannel channel;
        try {
            channel = FileChannel.open(path, opts);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(name);
        } catch (AccessDeniedException e) {
            throw e;
        } catch (IOException e) {
            throw new ImageException(name, -1, "open failed: " + message(e), e);
        }
        boolean done = false;
        PortableLock lock = null;
        try {
            if (options.lock()) {
                lock = PortableLock.acquire(name, path, writable);
            }
            if (options.create()) {
                channel.truncate(0);
            }
            Opened storage = new Opened(path, !writable, false, -1, false, channel, lock);
            done = true;
            return storage;
        } finally {
            if (!done) {
                channel.close();
                if (lock != null) {
                    lock.release();
                }
            }
        }
    }

    private static UnsupportedFeatureException directUnsupported(String name, String why) {
        return new UnsupportedFeatureException(name, Feature.HOST, "direct I/O", "direct I/O is not available: " + why);
    }
}
