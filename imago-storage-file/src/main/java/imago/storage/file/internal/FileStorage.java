package imago.storage.file.internal;

import imago.api.Feature;
import imago.api.ImageException;
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
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

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
 * <p>Thread-safe for requests on disjoint ranges. {@link #resize} must not run concurrently with
 * requests beyond the new end. A thread interrupted during channel I/O gets an
 * {@link InterruptedIOException}; the JDK closes the channel in that case, and the storage reopens it
 * for the other threads.
 */
public final class FileStorage implements Storage {
    private static final int DIRECT_ALIGNMENT = 4096;
    private static final int CHUNK = 1 << 20;

    private static final System.Logger LOG = System.getLogger(FileStorage.class.getName());

    // qemu's permission bits (include/block/block-common.h, QEMU 7.2: GRAPH_MOD is gone, four remain)
    static final int PERM_CONSISTENT_READ = 0x01;
    static final int PERM_WRITE = 0x02;
    static final int PERM_WRITE_UNCHANGED = 0x04;
    static final int PERM_RESIZE = 0x08;
    static final int PERM_COUNT = 4;
    private static final String[] PERM_NAMES = {"consistent read", "write", "write unchanged", "resize"};
    /** qemu's lock bytes: {@code 100 + i} for permission bit {@code i} used, {@code 200 + i} for it not shared. */
    static final int LOCK_PERM_BASE = 100;
    static final int LOCK_SHARED_BASE = 200;
    /**
     * What qemu's qcow2 (or any format) driver asks of its file when opened writable (qemu-io, qemu-img
     * commands that write, a running VM): a format driver may rewrite metadata and grow the file.
     */
    static final int WRITABLE_PERM = PERM_CONSISTENT_READ | PERM_WRITE | PERM_RESIZE;
    /** ... and read-only (qemu-img info, convert's source). */
    static final int READ_ONLY_PERM = PERM_CONSISTENT_READ;
    /** Both let others read and write unchanged data, never write or resize: the metadata must stay consistent. */
    static final int SHARED_PERM = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;

    private final StorageLocation location;
    private final String name;
    private final Path path;
    private final boolean readOnly;
    private final boolean direct;
    private final int alignment;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    /** Block devices report their size through lseek(SEEK_END), not st_size. */
    private final boolean blockDevice;

    /** Native calls hold the read lock; close takes the write lock, so a descriptor is never reused under a call. */
    private final ReentrantReadWriteLock fdGuard = new ReentrantReadWriteLock();
    /** Serialises reopening the channel after an interrupt against close. */
    private final ReentrantLock channelLock = new ReentrantLock();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile FileChannel channel;
    /** Without native access, the lock this storage shares with the other storages of this JVM on the file. */
    private final PortableLock portableLock;

    // What the file system refused; set once, read without locking.
    private volatile boolean noPunchHole;
    private volatile boolean noZeroRange;
    private volatile boolean noFallocate;
    private volatile boolean noSeekData;

    private FileStorage(StorageLocation location, Path path, boolean readOnly, boolean direct, int fd,
            boolean blockDevice, FileChannel channel, PortableLock portableLock) {
        this.location = location;
        this.name = location.name();
        this.path = path;
        this.readOnly = readOnly;
        this.direct = direct;
        this.alignment = direct ? DIRECT_ALIGNMENT : 1;
        this.fd = fd;
        this.blockDevice = blockDevice;
        this.channel = channel;
        this.portableLock = portableLock;
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
        Path path = location.path();
        if (nativeAccess && LibC.available()) {
            return openNative(location, path, options);
        }
        return openPortable(location, path, options);
    }

    private static FileStorage openNative(StorageLocation location, Path path, StorageOptions options)
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
                case LibC.ENOENT -> new NoSuchFileException(name);
                case LibC.EACCES, LibC.EPERM -> new AccessDeniedException(name, null, LibC.describe(e.errno()));
                case LibC.EISDIR -> new ImageException(name, "Is a directory");
                case LibC.EINVAL -> options.directIO()
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
                lockNative(name, fd, writable);
            }
            if (options.create()) {
                LibC.ftruncate(fd, 0);
            }
            FileChannel channel = channelOn(name, fd, path, writable);
            FileStorage storage = new FileStorage(location, path, !writable, options.directIO(), fd,
                    stat.isBlockDevice(), channel, null);
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

    /**
     * Takes qemu's image locks (QEMU 7.2 {@code block/file-posix.c}, {@code raw_apply_lock_bytes} and
     * {@code raw_check_lock_bytes}), so imago, qemu and qemu-img see each other. Each permission bit
     * {@code i} a holder uses is a shared OFD lock on byte {@code 100 + i}; each one it does not let
     * others use, a shared OFD lock on byte {@code 200 + i}. As qemu does, the locks are taken first and
     * then checked: nobody else may hold {@code 200 + i} for a permission we use, nor {@code 100 + i}
     * for one we do not share. Taking before checking means that of two racing opens at least one sees
     * the other. OFD locks belong to the open file description, so a second open conflicts even in
     * this JVM; closing the descriptor releases them, also after a failed open.
     *
     * <p>Where the kernel or file system has no OFD locks, falls back to {@code flock} (which only other
     * imago processes see), and where that fails too, opens unlocked, as qemu's {@code locking=auto}.
     */
    private static void lockNative(String name, int fd, boolean writable) throws IOException {
        int perm = writable ? WRITABLE_PERM : READ_ONLY_PERM;
        int shared = SHARED_PERM;
        int lockByte = -1;
        try {
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((perm & (1 << i)) != 0) {
                    lockByte = LOCK_PERM_BASE + i;
                    LibC.ofdSetLock(fd, LibC.F_RDLCK, lockByte, 1);
                }
            }
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((shared & (1 << i)) == 0) {
                    lockByte = LOCK_SHARED_BASE + i;
                    LibC.ofdSetLock(fd, LibC.F_RDLCK, lockByte, 1);
                }
            }
        } catch (ErrnoException e) {
            switch (e.errno()) {
                // a whole-file write lock, e.g. FileChannel.lock of an imago without native access
                case LibC.EAGAIN, LibC.EACCES -> throw new ImageLockedException(name,
                        lockedMessage(name, "Failed to lock byte " + lockByte));
                case LibC.EINVAL, LibC.ENOLCK, LibC.EOPNOTSUPP, LibC.ENOSYS -> {
                    LOG.log(System.Logger.Level.DEBUG, "{0}: OFD locks are not available ({1}); using flock",
                            name, LibC.describe(e.errno()));
                    releaseOfdLocks(fd);
                    lockFlock(name, fd, writable);
                    return;
                }
                default -> throw failure(name, "fcntl(F_OFD_SETLK) of byte " + lockByte, e);
            }
        }
        try {
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((perm & (1 << i)) != 0) {
                    lockByte = LOCK_SHARED_BASE + i;
                    if (LibC.ofdLocked(fd, lockByte, 1)) {
                        throw new ImageLockedException(name,
                                lockedMessage(name, "Failed to get \"" + PERM_NAMES[i] + "\" lock"));
                    }
                }
            }
            for (int i = 0; i < PERM_COUNT; i++) {
                if ((shared & (1 << i)) == 0) {
                    lockByte = LOCK_PERM_BASE + i;
                    if (LibC.ofdLocked(fd, lockByte, 1)) {
                        throw new ImageLockedException(name,
                                lockedMessage(name, "Failed to get shared \"" + PERM_NAMES[i] + "\" lock"));
                    }
                }
            }
        } catch (ErrnoException e) {
            throw failure(name, "fcntl(F_OFD_GETLK) of byte " + lockByte, e);
        }
    }

    /** Best effort: drops the lock bytes taken before OFD locking failed. */
    private static void releaseOfdLocks(int fd) {
        try {
            LibC.ofdSetLock(fd, LibC.F_UNLCK, LOCK_PERM_BASE, LOCK_SHARED_BASE + PERM_COUNT - LOCK_PERM_BASE);
        } catch (ErrnoException ignored) {
            // nothing was locked, or the descriptor's close releases it
        }
    }

    /** The fallback without OFD locks: excludes other imago processes only. */
    static void lockFlock(String name, int fd, boolean writable) throws IOException {
        // flock locks belong to the open file description: a second open conflicts even in this JVM
        try {
            LibC.flock(fd, (writable ? LibC.LOCK_EX : LibC.LOCK_SH) | LibC.LOCK_NB);
        } catch (ErrnoException e) {
            switch (e.errno()) {
                case LibC.EAGAIN -> throw locked(name, writable);
                case LibC.ENOLCK, LibC.EOPNOTSUPP, LibC.ENOSYS, LibC.EINVAL ->
                    // the file system cannot lock (e.g. NFS without lockd): open unlocked, as qemu does
                    LOG.log(System.Logger.Level.DEBUG, "{0}: the file system cannot lock ({1}); opened unlocked",
                            name, LibC.describe(e.errno()));
                default -> throw failure(name, "flock", e);
            }
        }
    }

    /** A buffered channel on the same open file: /proc/self/fd names exactly the inode we opened. */
    private static FileChannel channelOn(String name, int fd, Path path, boolean writable) throws IOException {
        Set<StandardOpenOption> options = writable
                ? EnumSet.of(StandardOpenOption.READ, StandardOpenOption.WRITE)
                : EnumSet.of(StandardOpenOption.READ);
        Path proc = Path.of("/proc/self/fd/" + fd);
        try {
            return FileChannel.open(Files.exists(proc) ? proc : path, options);
        } catch (IOException e) {
            throw new ImageException(name, -1, "open of the file channel failed: " + message(e), e);
        }
    }

    private static FileStorage openPortable(StorageLocation location, Path path, StorageOptions options)
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
            FileStorage storage = new FileStorage(location, path, !writable, false, -1, false, channel, lock);
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

    /** qemu's wording, so users recognise it: what a writable or read-only open meets when a writer holds the file. */
    static ImageLockedException locked(String name, boolean writable) {
        return new ImageLockedException(name,
                lockedMessage(name, writable ? "Failed to get \"write\" lock" : "Failed to get shared \"write\" lock"));
    }

    /** qemu's error and its hint, on one line. */
    private static String lockedMessage(String name, String error) {
        return error + ". Is another process using the image [" + name + "]?";
    }

    private static UnsupportedFeatureException directUnsupported(String name, String why) {
        return new UnsupportedFeatureException(name, Feature.HOST, "direct I/O", "direct I/O is not available: " + why);
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
        if (fd < 0) {
            return withChannel("size", 0, -1, FileChannel::size);
        }
        enter();
        try {
            return blockDevice ? LibC.lseek(fd, 0, LibC.SEEK_END) : LibC.fstat(fd).size();
        } catch (ErrnoException e) {
            throw failure(name, "fstat", e);
        } finally {
            exit();
        }
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
            directRead(dst, offset);
            return;
        }
        long pos = offset;
        while (dst.hasRemaining()) {
            long at = pos;
            int n = withChannel("read", at, dst.remaining(), ch -> ch.read(dst, at));
            if (n < 0) {
                zeroFill(dst); // past the end of the file
                return;
            }
            pos += n;
        }
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
            directWrite(src, offset);
            return;
        }
        channelWrite(src, offset);
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
        if (fd >= 0) {
            if (mayUnmap && !noPunchHole && punchAndExtend(offset, length)) {
                return;
            }
            if (!noZeroRange && fallocate(LibC.FALLOC_FL_ZERO_RANGE, offset, length)) {
                return; // without KEEP_SIZE, so a range past the end grows the file
            }
            if (!noPunchHole && !noFallocate && punchAndAllocate(offset, length)) {
                return;
            }
        }
        writeZeroBuffers(offset, length);
    }

    /** Punches the part before the end of the file, then grows the file sparsely to the end of the range. */
    private boolean punchAndExtend(long offset, long length) throws IOException {
        long end = offset + length;
        long size = size();
        long inside = Math.min(end, size);
        if (inside > offset && !fallocate(LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset,
                inside - offset)) {
            return false;
        }
        if (end > size) {
            // One zero byte at the end grows the file and leaves a hole before it. Unlike ftruncate it
            // can never cut off a concurrent write that has already grown the file further.
            channelWrite(zeroBuffer(1), end - 1);
        }
        return true;
    }

    /** qemu's fallback when zero range is refused: punch, then allocate the range again. */
    private boolean punchAndAllocate(long offset, long length) throws IOException {
        long inside = Math.min(offset + length, size());
        if (inside > offset && !fallocate(LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset,
                inside - offset)) {
            return false;
        }
        return fallocate(0, offset, length);
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
        if (length == 0 || fd < 0 || noPunchHole) {
            return;
        }
        fallocate(LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** Does nothing: every write went to the operating system with {@code pwrite}; nothing is buffered here. */
    @Override
    public void flush() throws IOException {
        checkOpen();
    }

    /** {@code fdatasync}, or {@link FileChannel#force force(false)} (the same on Linux) without native access. */
    @Override
    public void sync() throws IOException {
        if (fd < 0) {
            withChannel("force", 0, -1, ch -> {
                ch.force(false);
                return null;
            });
            return;
        }
        enter();
        try {
            LibC.fdatasync(fd);
        } catch (ErrnoException e) {
            throw failure(name, "fdatasync", e);
        } finally {
            exit();
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
        long current = size();
        if (size <= current) {
            if (size < current) {
                truncate(size);
            }
            return;
        }
        switch (preallocation) {
            case OFF, METADATA -> growSparse(size);
            case FALLOC -> preallocate(current, size);
            case FULL -> {
                try {
                    writeZeroBuffers(current, size - current);
                } catch (IOException e) {
                    try {
                        truncate(current);
                    } catch (IOException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                    throw e;
                }
            }
        }
    }

    private void truncate(long size) throws IOException {
        if (fd < 0) {
            withChannel("truncate to " + size, 0, -1, ch -> ch.truncate(size));
            return;
        }
        enter();
        try {
            LibC.ftruncate(fd, size);
        } catch (ErrnoException e) {
            throw failure(name, "ftruncate to " + size, e);
        } finally {
            exit();
        }
    }

    private void growSparse(long size) throws IOException {
        if (fd >= 0) {
            truncate(size);
        } else {
            channelWrite(zeroBuffer(1), size - 1); // a FileChannel grows only by writing
        }
    }

    private void preallocate(long current, long size) throws IOException {
        if (fd < 0) {
            throw new UnsupportedFeatureException(name, Feature.HOST, "falloc preallocation",
                    "falloc preallocation needs native access (java.lang.foreign on Linux): "
                            + Objects.requireNonNullElse(LibC.unavailableReason(), "disabled"));
        }
        int error;
        enter();
        try {
            error = LibC.posixFallocate(fd, current, size - current);
        } finally {
            exit();
        }
        if (error == 0) {
            return;
        }
        if (error == LibC.EOPNOTSUPP || error == LibC.ENOSYS || error == LibC.EINVAL) {
            throw new UnsupportedFeatureException(name, Feature.HOST, "falloc preallocation",
                    "falloc preallocation is not supported here: posix_fallocate failed: " + LibC.describe(error));
        }
        IOException failure = failure(name, "posix_fallocate at " + current + "+" + (size - current), error);
        try {
            truncate(current); // drop what was reserved before the failure
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
        throw failure;
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
        if (fd < 0 || noSeekData) {
            checkOpen();
            return Storage.super.dataExtent(offset, maxLength);
        }
        long data;
        long hole;
        enter();
        try {
            try {
                data = LibC.lseek(fd, offset, LibC.SEEK_DATA);
            } catch (ErrnoException e) {
                if (e.errno() == LibC.ENXIO) {
                    return new StorageExtent(offset, maxLength, false); // a hole up to and past the end
                }
                if (!unsupported(e.errno())) {
                    throw failure(name, "lseek(SEEK_DATA) at " + offset, e);
                }
                noSeekData = true;
                return Storage.super.dataExtent(offset, maxLength);
            }
            if (data > offset) {
                return new StorageExtent(offset, Math.min(maxLength, data - offset), false);
            }
            try {
                hole = LibC.lseek(fd, offset, LibC.SEEK_HOLE);
            } catch (ErrnoException e) {
                if (e.errno() == LibC.ENXIO) {
                    return new StorageExtent(offset, maxLength, false); // truncated meanwhile
                }
                throw failure(name, "lseek(SEEK_HOLE) at " + offset, e);
            }
        } finally {
            exit();
        }
        if (data < offset || hole <= offset) {
            return Storage.super.dataExtent(offset, maxLength); // a file system we do not understand
        }
        return new StorageExtent(offset, Math.min(maxLength, hole - offset), true);
    }

    /** The file's modification time, as {@code stat} reports it for the path this storage opened. */
    @Override
    public Optional<java.time.Instant> lastModified() throws IOException {
        checkOpen();
        return Optional.of(Files.getLastModifiedTime(path).toInstant());
    }

    /** {@code st_blocks * 512} from {@code fstat}; unknown without native access. */
    @Override
    public OptionalLong allocatedSize() throws IOException {
        if (fd < 0) {
            checkOpen();
            return OptionalLong.empty();
        }
        enter();
        try {
            return OptionalLong.of(LibC.fstat(fd).blocks() * 512);
        } catch (ErrnoException e) {
            throw failure(name, "fstat", e);
        } finally {
            exit();
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
        if (storedName.isEmpty() || storedName.indexOf('\0') >= 0) {
            return Optional.empty();
        }
        Path stored;
        try {
            stored = path.getFileSystem().getPath(storedName);
        } catch (InvalidPathException e) {
            return Optional.empty();
        }
        if (!stored.isAbsolute()) {
            Path dir = path.toAbsolutePath().getParent();
            stored = dir == null ? stored.toAbsolutePath() : dir.resolve(stored);
        }
        return Optional.of(StorageLocation.file(stored));
    }

    /** Closes the file and releases its lock; waits for native calls in flight. Idempotent. */
    @Override
    public void close() throws IOException {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        IOException failure = null;
        channelLock.lock();
        try {
            channel.close();
        } catch (IOException e) {
            failure = new ImageException(name, -1, "close failed: " + message(e), e);
        } finally {
            channelLock.unlock();
        }
        if (portableLock != null) {
            try {
                portableLock.release();
            } catch (IOException e) {
                if (failure == null) {
                    failure = new ImageException(name, -1, "unlock failed: " + message(e), e);
                }
            }
        }
        if (fd >= 0) {
            fdGuard.writeLock().lock();
            try {
                LibC.close(fd); // releases the OFD (or flock) locks
            } catch (ErrnoException e) {
                if (failure == null) {
                    failure = failure(name, "close", e);
                }
            } finally {
                fdGuard.writeLock().unlock();
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public String toString() {
        return "FileStorage[" + name + (readOnly ? ", read-only" : "") + (direct ? ", direct" : "") + "]";
    }

    // ---- package-private, for tests ----

    /** Whether this storage still tries to punch holes (native access, not refused by the file system). */
    boolean punchesHoles() {
        return fd >= 0 && !noPunchHole;
    }

    boolean nativeAccess() {
        return fd >= 0;
    }

    /** Behaves as on a file system that refuses the given calls, as if each had failed with EOPNOTSUPP. */
    void refuse(boolean punchHole, boolean zeroRange, boolean fallocate, boolean seekData) {
        noPunchHole |= punchHole;
        noZeroRange |= zeroRange;
        noFallocate |= fallocate;
        noSeekData |= seekData;
    }

    // ---- fallocate and zero buffers ----

    /** Runs fallocate; {@code false} (remembered) if the file system refuses the mode. */
    private boolean fallocate(int mode, long offset, long length) throws IOException {
        enter();
        try {
            LibC.fallocate(fd, mode, offset, length);
            return true;
        } catch (ErrnoException e) {
            if (!unsupported(e.errno())) {
                throw failure(name, "fallocate(" + modeName(mode) + ") at " + offset + "+" + length, e);
            }
            if ((mode & LibC.FALLOC_FL_PUNCH_HOLE) != 0) {
                noPunchHole = true;
            } else if ((mode & LibC.FALLOC_FL_ZERO_RANGE) != 0) {
                noZeroRange = true;
            } else {
                noFallocate = true;
            }
            return false;
        } finally {
            exit();
        }
    }

    private static String modeName(int mode) {
        if ((mode & LibC.FALLOC_FL_PUNCH_HOLE) != 0) {
            return "PUNCH_HOLE";
        }
        return (mode & LibC.FALLOC_FL_ZERO_RANGE) != 0 ? "ZERO_RANGE" : "0";
    }

    private static boolean unsupported(int errno) {
        return errno == LibC.EOPNOTSUPP || errno == LibC.ENOSYS || errno == LibC.EINVAL || errno == LibC.ENODEV;
    }

    /**
     * Writes zeroes from one shared buffer, in chunks of at most 1 MiB. With direct I/O the aligned
     * middle goes through the O_DIRECT descriptor and the unaligned edges through the buffered channel
     * (the kernel keeps the two coherent).
     */
    private void writeZeroBuffers(long offset, long length) throws IOException {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long n;
            if (direct && (pos & (alignment - 1)) == 0 && end - pos >= alignment) {
                n = Math.min(CHUNK, (end - pos) & -alignment);
                nativeWrite(Zeroes.SEGMENT.asSlice(0, n), pos);
            } else {
                long stop = direct ? Math.min(end, (pos + alignment) & -alignment) : Math.min(end, pos + CHUNK);
                n = stop - pos;
                channelWrite(zeroBuffer((int) n), pos);
            }
            pos += n;
        }
    }

    private static ByteBuffer zeroBuffer(int length) {
        return Zeroes.BUFFER.slice(0, length);
    }

    private static void zeroFill(ByteBuffer dst) {
        MemorySegment.ofBuffer(dst).fill((byte) 0);
        dst.position(dst.limit());
    }

    /** One shared, aligned megabyte of zeroes; made on first use. */
    private static final class Zeroes {
        static final MemorySegment SEGMENT = Arena.global().allocate(CHUNK, DIRECT_ALIGNMENT);
        static final ByteBuffer BUFFER = SEGMENT.asByteBuffer().asReadOnlyBuffer();
    }

    // ---- direct I/O ----

    private void checkAligned(long offset, int length) {
        if (((offset | length) & (alignment - 1)) != 0) {
            throw new IllegalArgumentException(name + ": direct I/O needs " + alignment
                    + "-byte aligned offsets and lengths, got " + offset + "+" + length);
        }
    }

    private boolean alignedMemory(ByteBuffer buf) {
        return buf.isDirect() && (MemorySegment.ofBuffer(buf).address() & (alignment - 1)) == 0;
    }

    private void directRead(ByteBuffer dst, long offset) throws IOException {
        int length = dst.remaining();
        checkAligned(offset, length);
        try (Arena arena = Arena.ofConfined()) {
            boolean bounce = !alignedMemory(dst);
            MemorySegment seg = bounce ? arena.allocate(length, alignment) : MemorySegment.ofBuffer(dst);
            long done = 0;
            enter();
            try {
                while (done < length) {
                    long n = LibC.pread(fd, seg.asSlice(done), offset + done);
                    if (n == 0) {
                        break;
                    }
                    done += n;
                    if ((done & (alignment - 1)) != 0) {
                        break; // an O_DIRECT read ends unaligned only at the end of the file
                    }
                }
            } catch (ErrnoException e) {
                throw failure(name, "pread at " + offset + "+" + length, e);
            } finally {
                exit();
            }
            seg.asSlice(done).fill((byte) 0); // past the end of the file
            if (bounce) {
                MemorySegment.copy(seg, 0, MemorySegment.ofBuffer(dst), 0, length);
            }
        }
        dst.position(dst.limit());
    }

    private void directWrite(ByteBuffer src, long offset) throws IOException {
        int length = src.remaining();
        checkAligned(offset, length);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg;
            if (alignedMemory(src)) {
                seg = MemorySegment.ofBuffer(src);
            } else {
                seg = arena.allocate(length, alignment);
                MemorySegment.copy(MemorySegment.ofBuffer(src), 0, seg, 0, length);
            }
            nativeWrite(seg, offset);
        }
        src.position(src.limit());
    }

    private void nativeWrite(MemorySegment seg, long offset) throws IOException {
        long length = seg.byteSize();
        long done = 0;
        enter();
        try {
            while (done < length) {
                long n = LibC.pwrite(fd, seg.asSlice(done), offset + done);
                if (n == 0) {
                    throw new ImageException(name, -1, "pwrite at " + (offset + done) + "+" + (length - done)
                            + " wrote nothing", null);
                }
                done += n;
            }
        } catch (ErrnoException e) {
            throw failure(name, "pwrite at " + offset + "+" + length, e);
        } finally {
            exit();
        }
    }

    // ---- channel I/O ----

    private void channelWrite(ByteBuffer src, long offset) throws IOException {
        long pos = offset;
        while (src.hasRemaining()) {
            long at = pos;
            pos += withChannel("write", at, src.remaining(), ch -> ch.write(src, at));
        }
    }

    @FunctionalInterface
    private interface ChannelCall<T> {
        T apply(FileChannel channel) throws IOException;
    }

    /**
     * Runs one channel call; {@code offset} and {@code length} only describe it in messages. If another thread's interrupt closed the channel, reopens it and retries
     * (positional calls are idempotent); if this thread was interrupted, reopens it for the others and
     * throws {@link InterruptedIOException}.
     */
    private <T> T withChannel(String op, long offset, long length, ChannelCall<T> call) throws IOException {
        while (true) {
            FileChannel ch = channel;
            try {
                return call.apply(ch);
            } catch (ClosedByInterruptException e) {
                checkOpen();
                InterruptedIOException interrupted = new InterruptedIOException(
                        name + ": " + describe(op, offset, length) + " interrupted");
                interrupted.initCause(e);
                try {
                    reopen(ch);
                } catch (IOException notReopened) {
                    interrupted.addSuppressed(notReopened);
                }
                throw interrupted;
            } catch (ClosedChannelException e) { // also AsynchronousCloseException
                checkOpen();
                reopen(ch);
            } catch (IOException e) {
                throw new ImageException(name, -1, describe(op, offset, length) + " failed: " + message(e), e);
            }
        }
    }

    private void reopen(FileChannel old) throws IOException {
        if (fd < 0) {
            // the lock lived on the closed channel: reopening by path could open another file, unlocked
            throw new ImageException(name, "the file channel was closed by a thread interrupt; reopen the storage");
        }
        channelLock.lock();
        try {
            checkOpen();
            if (channel == old) {
                enter();
                try {
                    channel = channelOn(name, fd, path, !readOnly);
                } finally {
                    exit();
                }
            }
        } finally {
            channelLock.unlock();
        }
    }

    // ---- checks and errors ----

    private void enter() throws IOException {
        fdGuard.readLock().lock();
        if (closed.get()) {
            fdGuard.readLock().unlock();
            throw closedException();
        }
    }

    private void exit() {
        fdGuard.readLock().unlock();
    }

    private void checkOpen() throws IOException {
        if (closed.get()) {
            throw closedException();
        }
    }

    private ImageException closedException() {
        return new ImageException(name, "storage is closed");
    }

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

    private static ImageException failure(String name, String op, ErrnoException e) {
        return failure(name, op, e.errno());
    }

    private static ImageException failure(String name, String op, int errno) {
        return new ImageException(name, -1, op + " failed: " + LibC.describe(errno), null);
    }

    /** {@code op} with its range; a negative length means the operation has none. */
    private static String describe(String op, long offset, long length) {
        return length < 0 ? op : op + " at " + offset + "+" + length;
    }

    private static String message(IOException e) {
        return Objects.requireNonNullElse(e.getMessage(), e.getClass().getSimpleName());
    }
}
