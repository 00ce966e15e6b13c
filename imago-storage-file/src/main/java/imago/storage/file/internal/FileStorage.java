package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;

import imago.api.ImageLockedException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A local file as a {@link Storage}.
 *
 * <p>With native access (Linux, {@code java.lang.foreign}), the file is opened once with libc
 * {@code open}; that descriptor carries qemu's image locks (OFD byte-range locks, see
 * {@link #open(StorageLocation, StorageOptions)}) and serves {@code fallocate} (punch
 * hole, zero range), {@code lseek(SEEK_DATA/SEEK_HOLE)}, {@code fstat}, {@code ftruncate},
 * {@code fdatasync} and, with direct I/O, {@code pread}/{@code pwrite}. Buffered data I/O goes through
 * a {@link FileChannel} opened on {@code /proc/self/fd/N}, so it is surely the same file, and keeps
 * the JDK's handling of virtual threads that block in file I/O. Without native access only the
 * {@code FileChannel} is used; holes are then never punched, zeroes are written, and locks are
 * {@link FileChannel#tryLock} locks.
 *
 * <p>What the file system refuses ({@code EOPNOTSUPP}, {@code ENOSYS}, {@code EINVAL} for an
 * unsupported mode) is remembered per storage, so a failing call is not retried on every request.
 *
 * <p>This class checks requests and hands them on, as the JDK's {@code sun.nio.fs} classes divide the
 * work: {@link FileOpener} opens the file, {@link ImageLocks} takes QEMU's image locks, {@link FileSpace}
 * zeroes, discards and resizes, {@link DirectIo} and {@link ChannelIo} move the data, {@link CopyOffload} hands
 * copies to the kernel, {@link HoleSeeker} finds data and holes, {@link StoredNames} resolves names stored in
 * images, {@link FileHandle} guards the descriptor against close, {@link FileRelease} gives everything back on
 * close, and {@link Failures} words the errors.
 *
 * <p>Thread-safe for requests on disjoint ranges. {@link #resize} must not run concurrently with
 * requests beyond the new end. A thread interrupted during channel I/O gets an
 * {@link InterruptedIOException}; the JDK closes the channel in that case, and the storage reopens it
 * for the other threads.
 */
public final class FileStorage implements Storage {
    private final StorageLocation location;
    private final String name;
    private final Path path;
    private final boolean readOnly;
    private final boolean direct;
    private final int alignment;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    private final FileHandle handle;
    private final ChannelIo channels;
    private final DirectIo directIo;
    private final FileSpace space;
    /** Without native access, the lock this storage shares with the other storages of this JVM on the file. */
    private final PortableLock portableLock;
    private final HoleSeeker holes;
    private final CopyOffload copies;

    private FileStorage(StorageLocation location, FileOpener.Opened opened) {
        this.location = location;
        this.name = location.name();
        this.path = opened.path();
        this.readOnly = opened.readOnly();
        this.direct = opened.direct();
        this.alignment = direct ? DirectIo.ALIGNMENT : 1;
        this.fd = opened.fd();
        this.handle = new FileHandle(name, fd);
        this.channels = new ChannelIo(handle, path, readOnly, opened.channel());
        this.directIo = new DirectIo(handle);
        this.space = new FileSpace(handle, opened.blockDevice(), channels, directIo, direct, alignment);
        this.portableLock = opened.portableLock();
        this.holes = new HoleSeeker(name, handle, fd);
        this.copies = new CopyOffload(handle, fd, direct);
    }

    /**
     * Opens the file at {@code location}.
     *
     * <p>With {@link StorageOptions#lock()} and native access, takes qemu's (7.2) image locks, the OFD
     * byte-range locks qemu, qemu-img and qemu-io take on the file: a writable open uses the
     * permissions consistent read, write and resize, a read-only open consistent read, and both share
     * only consistent read and write unchanged, as qemu's format drivers do for their file. So a
     * writable open fails while a VM or qemu-img or another imago storage (even in this JVM) uses the
     * file, and qemu refuses a file imago writes; readers share it. Where the file system has no OFD
     * locks, {@code flock} (seen by imago only) stands in, and where it has no locks at all, the file is
     * opened unlocked.
     *
     * @throws NoSuchFileException if the file does not exist and {@code create} is not set
     * @throws ImageLockedException if a lock is requested and another open holds a conflicting one
     * @throws UnsupportedFeatureException if direct I/O is requested and not available
     * @throws IOException if the file cannot be opened, e.g. it is a directory
     */
    public static FileStorage open(StorageLocation location, StorageOptions options) throws IOException {
        return open(location, options, true);
    }

    /** As {@link #open(StorageLocation, StorageOptions)}; {@code nativeAccess = false} forces the portable path. */
    static FileStorage open(StorageLocation location, StorageOptions options, boolean nativeAccess)
            throws IOException {
        Objects.requireNonNull(location, "location");
        Objects.requireNonNull(options, "options");
        return new FileStorage(location, FileOpener.open(location, options, nativeAccess));
    }

    // ---- Storage ----

    @Override
    public String name() {
        return name;
    }

    @Override
    public StorageLocation location() {
        return location;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    /** 4096 with direct I/O, else 1. */
    @Override
    public int requestAlignment() {
        return alignment;
    }

    /** 4096 with direct I/O, else 1. */
    @Override
    public int memoryAlignment() {
        return alignment;
    }

    @Override
    public long size() throws IOException {
        return space.size();
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException with direct I/O, if {@code offset} or the length is not aligned
     */
    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        int length = dst.remaining();
        checkRange(offset, length);
        if (length == 0) {
            return;
        }
        if (direct) {
            directIo.read(dst, offset);
            return;
        }
        channels.read(dst, offset);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException with direct I/O, if {@code offset} or the length is not aligned
     */
    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        checkWritable(offset);
        int length = src.remaining();
        checkRange(offset, length);
        if (length == 0) {
            return;
        }
        if (direct) {
            directIo.write(src, offset);
            return;
        }
        channels.write(src, offset);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: from another native, non-direct file storage with {@code copy_file_range}, so the bytes never enter
     * this process's memory. What the kernel leaves (past the source's end, EXDEV, EINVAL, no such call in libc) or
     * fails to copy goes through a buffer, which then reports a real failure as the read or write it is.
     */
    @Override
    public void copyFrom(Storage source, long sourceOffset, long length, long offset) throws IOException {
        checkWritable(offset);
        checkRange(offset, length);
        checkRange(sourceOffset, length);
        long done = 0;
        if (source instanceof FileStorage from && copies.offloads() && from.copies.offloads()) {
            done = copies.copyFrom(from.copies, sourceOffset, length, offset);
        }
        if (done < length) {
            Storage.super.copyFrom(source, sourceOffset + done, length - done, offset + done);
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: with {@code mayUnmap}, punches a hole ({@code FALLOC_FL_PUNCH_HOLE}); else, or where
     * that is refused, {@code FALLOC_FL_ZERO_RANGE}; else a hole re-allocated with {@code fallocate};
     * else zero-filled buffers. A range past the end grows the file, as a write would.
     */
    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        checkWritable(offset);
        checkRange(offset, length);
        if (length == 0) {
            return;
        }
        space.writeZeroes(offset, length, mayUnmap);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: punches a hole where the file system can, so the range reads as zeroes; else does nothing.
     * Never changes the size.
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable(offset);
        checkRange(offset, length);
        space.discard(offset, length);
    }

    /** Does nothing: every write went to the operating system with {@code pwrite}; nothing is buffered here. */
    @Override
    public void flush() throws IOException {
        handle.checkOpen();
    }

    /** {@code fdatasync}, or {@link FileChannel#force force(false)} (the same on Linux) without native access. */
    @Override
    public void sync() throws IOException {
        if (fd < 0) {
            channels.withChannel("force", 0, -1, ch -> {
                ch.force(false);
                return null;
            });
            return;
        }
        handle.enter();
        try {
            LibcData.fdatasync(fd);
        } catch (ErrnoException e) {
            throw failure(name, "fdatasync", e);
        } finally {
            handle.exit();
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Shrinking truncates whatever {@code preallocation} says. Growing: {@code OFF} and {@code METADATA}
     * leave a hole, {@code FALLOC} reserves the new range with {@code posix_fallocate}, {@code FULL}
     * writes zeroes to it. A failed {@code FALLOC} or {@code FULL} grow restores the old size.
     *
     * @throws UnsupportedFeatureException for {@code FALLOC} without native access or file-system support
     */
    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        Objects.requireNonNull(preallocation, "preallocation");
        checkWritable(size);
        if (size < 0) {
            throw new IllegalArgumentException(name + ": negative size " + size);
        }
        space.resize(size, preallocation);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: {@code lseek(SEEK_DATA)} and {@code lseek(SEEK_HOLE)}; where the file system cannot
     * tell, everything before the end of the file is data.
     */
    @Override
    public StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength <= 0) {
            throw new IllegalArgumentException(name + ": bad extent query " + offset + "+" + maxLength);
        }
        Optional<StorageExtent> known = holes.extent(offset, maxLength);
        return known.isPresent() ? known.get() : Storage.super.dataExtent(offset, maxLength);
    }

    /** The file's modification time, as {@code stat} reports it for the path this storage opened. */
    @Override
    public Optional<java.time.Instant> lastModified() throws IOException {
        handle.checkOpen();
        return Optional.of(Files.getLastModifiedTime(path).toInstant());
    }

    /** {@code st_blocks * 512} from {@code fstat}; unknown without native access. */
    @Override
    public OptionalLong allocatedSize() throws IOException {
        if (fd < 0) {
            handle.checkOpen();
            return OptionalLong.empty();
        }
        handle.enter();
        try {
            return OptionalLong.of(LibC.fstat(fd).blocks() * 512);
        } catch (ErrnoException e) {
            throw failure(name, "fstat", e);
        } finally {
            handle.exit();
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: an absolute name is taken as it is, a relative one is resolved against this file's
     * directory. Empty names and names with NUL resolve to nothing.
     */
    @Override
    public Optional<StorageLocation> resolve(String storedName) {
        Objects.requireNonNull(storedName, "storedName");
        return StoredNames.resolve(path, storedName);
    }

    /** Closes the file and releases its lock; waits for native calls in flight. Idempotent. */
    @Override
    public void close() throws IOException {
        if (!handle.markClosed()) {
            return;
        }
        FileRelease.release(name, channels, portableLock, handle, fd >= 0);
    }

    @Override
    public String toString() {
        return "FileStorage[" + name + (readOnly ? ", read-only" : "") + (direct ? ", direct" : "") + "]";
    }

    // ---- package-private, for tests ----

    /** Whether this storage still tries to punch holes (native access, not refused by the file system). */
    boolean punchesHoles() {
        return space.punchesHoles();
    }

    boolean nativeAccess() {
        return fd >= 0;
    }

    /** The native descriptor, or -1 without native access. */
    int fd() {
        return fd;
    }

    /** Behaves as on a file system that refuses the given calls, as if each had failed with EOPNOTSUPP. */
    void refuse(boolean punchHole, boolean zeroRange, boolean fallocate, boolean seekData) {
        space.refuse(punchHole, zeroRange, fallocate);
        if (seekData) {
            holes.refuse();
        }
    }

    // ---- checks ----

    private void checkWritable(long offset) throws IOException {
        if (readOnly) {
            throw new ReadOnlyImageException(name, offset, "opened read-only, cannot write");
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException(name + ": bad range " + offset + "+" + length);
        }
    }
}
