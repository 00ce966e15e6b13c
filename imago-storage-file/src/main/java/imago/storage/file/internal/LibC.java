package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The few Linux libc calls the file storage needs, bound through {@code java.lang.foreign}. The class
 * is its own lazy holder: the downcall handles are made when it is first used (the first open), not
 * when the provider is loaded. If binding fails (not Linux, an unknown architecture, native access
 * denied), {@link #available()} is false and the storage uses portable {@code FileChannel} I/O.
 *
 * <p>Each call returns its result or throws {@link ErrnoException} with the {@code errno} captured by
 * the linker; calls that may be interrupted by a signal are retried on {@code EINTR}.
 */
final class LibC {
    static final int O_RDONLY = 0;
    static final int O_RDWR = 2;
    static final int O_CREAT = 0x40;
    static final int O_NONBLOCK = 0x800;
    static final int O_CLOEXEC = 0x80000;

    static final int SEEK_END = 2;
    static final int SEEK_DATA = 3;
    static final int SEEK_HOLE = 4;

    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;

    static final int LOCK_SH = 1;
    static final int LOCK_EX = 2;
    static final int LOCK_NB = 4;

    /** {@code fcntl} commands for open file description locks (Linux 3.15+, the same on every architecture). */
    static final int F_OFD_GETLK = 36;
    static final int F_OFD_SETLK = 37;
    static final short F_RDLCK = 0;
    static final short F_WRLCK = 1;
    static final short F_UNLCK = 2;
    private static final short SEEK_SET = 0;
    /**
     * {@code struct flock} on x86_64 and aarch64:
     * short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
     */
    private static final int FLOCK_SIZE = 32;
    private static final long L_TYPE = 0;
    private static final long L_WHENCE = 2;
    private static final long L_START = 8;
    private static final long L_LEN = 16;
    private static final long L_PID = 24;

    static final int S_IFMT = 0170000;
    static final int S_IFDIR = 0040000;
    static final int S_IFBLK = 0060000;
    static final int S_IFREG = 0100000;

    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EINTR = 4;
    static final int ENXIO = 6;
    static final int EAGAIN = 11;
    static final int EACCES = 13;
    static final int ENODEV = 19;
    static final int EISDIR = 21;
    static final int EINVAL = 22;
    static final int ENOLCK = 37;
    static final int ENOSYS = 38;
    static final int EOPNOTSUPP = 95;

    /** The parts of the ABI that differ between the architectures we know. */
    private enum Arch {
        X86_64(0x4000, 24, 1),
        AARCH64(0x10000, 16, 0);

        final int oDirect;
        /** Offset of {@code st_mode} in {@code struct stat}; st_size (48) and st_blocks (64) agree. */
        final int stModeOffset;
        /** {@code _STAT_VER} for {@code __fxstat} on glibc before 2.33, which has no {@code fstat} symbol. */
        final int statVer;

        Arch(int oDirect, int stModeOffset, int statVer) {
            this.oDirect = oDirect;
            this.stModeOffset = stModeOffset;
            this.statVer = statVer;
        }
    }

    private static final int ST_SIZE = 48;
    private static final int ST_BLOCKS = 64;
    /** Larger than {@code struct stat} on every Linux ABI (144 bytes on x86_64, 128 on aarch64). */
    private static final int STAT_BUFFER = 256;

    /** Record components are trusted finals, so the JIT treats these handles as constants. */
    private record Calls(MethodHandle open, MethodHandle close, MethodHandle fallocate,
            MethodHandle posixFallocate, MethodHandle lseek, MethodHandle fdatasync, MethodHandle fstat,
            MethodHandle ftruncate, MethodHandle flock, MethodHandle fcntlPointer, MethodHandle pread,
            MethodHandle pwrite) {
    }

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Charset PATH_CHARSET = pathCharset();

    private static final Arch ARCH;
    private static final Calls CALLS;
    private static final String UNAVAILABLE;

    static {
        Arch arch = arch();
        Calls calls = null;
        String why = null;
        if (!System.getProperty("os.name", "").startsWith("Linux")) {
            why = "not Linux (" + System.getProperty("os.name") + ")";
        } else if (arch == null) {
            why = "unsupported architecture " + System.getProperty("os.arch");
        } else {
            try {
                calls = link(arch);
            } catch (RuntimeException | LinkageError e) {
                // IllegalCallerException when native access is denied, UnsupportedOperationException
                // when the platform has no linker, NoSuchElementException for a missing symbol
                why = e.toString();
            }
        }
        ARCH = arch;
        CALLS = calls;
        UNAVAILABLE = why;
    }

    private LibC() {
    }

    /** Whether the native calls are bound. */
    static boolean available() {
        return CALLS != null;
    }

    /** Why the native calls are not bound, or {@code null} if they are. */
    static String unavailableReason() {
        return UNAVAILABLE;
    }

    /** {@code O_DIRECT} for this architecture. */
    static int oDirect() {
        return ARCH.oDirect;
    }

    private static Arch arch() {
        return switch (System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64" -> Arch.X86_64;
            case "aarch64", "arm64" -> Arch.AARCH64;
            default -> null;
        };
    }

    /** File names are passed to the kernel in the encoding the JDK uses for them. */
    private static Charset pathCharset() {
        try {
            String name = System.getProperty("sun.jnu.encoding");
            return name == null ? StandardCharsets.UTF_8 : Charset.forName(name);
        } catch (IllegalArgumentException e) {
            return StandardCharsets.UTF_8;
        }
    }

    @SuppressWarnings("restricted") // Linker::downcallHandle; the module runs with --enable-native-access
    private static Calls link(Arch arch) {
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        MethodHandle fstat;
        var fstatSymbol = libc.find("fstat");
        if (fstatSymbol.isPresent()) {
            fstat = linker.downcallHandle(fstatSymbol.get(), FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), errno);
        } else {
            MethodHandle fxstat = linker.downcallHandle(symbol(libc, "__fxstat"),
                    FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), errno);
            fstat = MethodHandles.insertArguments(fxstat, 1, arch.statVer); // after the capture segment
        }
        return new Calls(
                // open is variadic: the mode is the first variadic argument
                linker.downcallHandle(symbol(libc, "open"),
                        FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
                        Linker.Option.firstVariadicArg(2), errno),
                linker.downcallHandle(symbol(libc, "close"), FunctionDescriptor.of(JAVA_INT, JAVA_INT), errno),
                linker.downcallHandle(symbol(libc, "fallocate"),
                        FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), errno),
                // posix_fallocate returns the error number instead of setting errno
                linker.downcallHandle(symbol(libc, "posix_fallocate"),
                        FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG)),
                linker.downcallHandle(symbol(libc, "lseek"),
                        FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), errno),
                linker.downcallHandle(symbol(libc, "fdatasync"), FunctionDescriptor.of(JAVA_INT, JAVA_INT), errno),
                fstat,
                linker.downcallHandle(symbol(libc, "ftruncate"),
                        FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), errno),
                linker.downcallHandle(symbol(libc, "flock"), FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), errno),
                // fcntl is variadic: the struct flock pointer is the first variadic argument
                linker.downcallHandle(symbol(libc, "fcntl"),
                        FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS),
                        Linker.Option.firstVariadicArg(2), errno),
                linker.downcallHandle(symbol(libc, "pread"),
                        FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), errno),
                linker.downcallHandle(symbol(libc, "pwrite"),
                        FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), errno));
    }

    private static MemorySegment symbol(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new UnsupportedOperationException("libc has no " + name));
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Invoking a handle whose type matches cannot throw a checked exception; rethrow anything else. */
    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** {@code open(path, flags, mode)}; returns the descriptor. */
    static int open(String path, int flags, int mode) throws ErrnoException {
        byte[] bytes = path.getBytes(PATH_CHARSET);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment name = arena.allocate(bytes.length + 1L); // zeroed, so NUL-terminated
            MemorySegment.copy(bytes, 0, name, JAVA_BYTE, 0, bytes.length);
            while (true) {
                int fd;
                try {
                    fd = (int) CALLS.open().invokeExact(state, name, flags, mode);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (fd >= 0) {
                    return fd;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** {@code close(fd)}; never retried: on Linux the descriptor is gone even after EINTR. */
    static void close(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int r;
            try {
                r = (int) CALLS.close().invokeExact(state, fd);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r != 0 && errno(state) != EINTR) {
                throw new ErrnoException(errno(state));
            }
        }
    }

    /** {@code fallocate(fd, mode, offset, length)}. */
    static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                int r;
                try {
                    r = (int) CALLS.fallocate().invokeExact(state, fd, mode, offset, length);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r == 0) {
                    return;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** {@code posix_fallocate(fd, offset, length)}; returns 0 or the error number. */
    static int posixFallocate(int fd, long offset, long length) {
        while (true) {
            int r;
            try {
                r = (int) CALLS.posixFallocate().invokeExact(fd, offset, length);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r != EINTR) {
                return r;
            }
        }
    }

    /** {@code lseek(fd, offset, whence)}; returns the new offset. */
    static long lseek(int fd, long offset, int whence) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long r;
            try {
                r = (long) CALLS.lseek().invokeExact(state, fd, offset, whence);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r < 0) {
                throw new ErrnoException(errno(state));
            }
            return r;
        }
    }

    /** {@code fdatasync(fd)}. */
    static void fdatasync(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                int r;
                try {
                    r = (int) CALLS.fdatasync().invokeExact(state, fd);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r == 0) {
                    return;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** The fields of {@code struct stat} the storage uses. */
    record Stat(int mode, long size, long blocks) {
        boolean isDirectory() {
            return (mode & S_IFMT) == S_IFDIR;
        }

        boolean isRegularFile() {
            return (mode & S_IFMT) == S_IFREG;
        }

        boolean isBlockDevice() {
            return (mode & S_IFMT) == S_IFBLK;
        }
    }

    /** {@code fstat(fd)}. */
    static Stat fstat(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment buf = arena.allocate(STAT_BUFFER, 8);
            int r;
            try {
                r = (int) CALLS.fstat().invokeExact(state, fd, buf);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r != 0) {
                throw new ErrnoException(errno(state));
            }
            return new Stat(buf.get(JAVA_INT, ARCH.stModeOffset), buf.get(JAVA_LONG, ST_SIZE),
                    buf.get(JAVA_LONG, ST_BLOCKS));
        }
    }

    /** {@code ftruncate(fd, length)}. */
    static void ftruncate(int fd, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                int r;
                try {
                    r = (int) CALLS.ftruncate().invokeExact(state, fd, length);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r == 0) {
                    return;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** {@code flock(fd, operation)}. */
    static void flock(int fd, int operation) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                int r;
                try {
                    r = (int) CALLS.flock().invokeExact(state, fd, operation);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r == 0) {
                    return;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /**
     * {@code fcntl(fd, F_OFD_SETLK, {type, SEEK_SET, start, length})}: takes ({@link #F_RDLCK},
     * {@link #F_WRLCK}) or releases ({@link #F_UNLCK}) an open file description lock without waiting.
     *
     * @throws ErrnoException {@code EAGAIN} (or {@code EACCES}) if a conflicting lock is held,
     *         {@code EINVAL} if the kernel has no OFD locks
     */
    static void ofdSetLock(int fd, short type, long start, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment lock = flock(arena, type, start, length);
            fcntl(state, fd, F_OFD_SETLK, lock);
        }
    }

    /**
     * {@code fcntl(fd, F_OFD_GETLK, {F_WRLCK, SEEK_SET, start, length})}: whether a lock that would
     * conflict with a write lock on the range is held through another open file description.
     */
    static boolean ofdLocked(int fd, long start, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment lock = flock(arena, F_WRLCK, start, length);
            fcntl(state, fd, F_OFD_GETLK, lock);
            return lock.get(JAVA_SHORT, L_TYPE) != F_UNLCK;
        }
    }

    /** A {@code struct flock}; {@code l_pid} must be 0 for OFD locks. */
    private static MemorySegment flock(Arena arena, short type, long start, long length) {
        MemorySegment lock = arena.allocate(FLOCK_SIZE, 8); // zeroed
        lock.set(JAVA_SHORT, L_TYPE, type);
        lock.set(JAVA_SHORT, L_WHENCE, SEEK_SET);
        lock.set(JAVA_LONG, L_START, start);
        lock.set(JAVA_LONG, L_LEN, length);
        lock.set(JAVA_INT, L_PID, 0);
        return lock;
    }

    private static void fcntl(MemorySegment state, int fd, int command, MemorySegment arg) throws ErrnoException {
        while (true) {
            int r;
            try {
                r = (int) CALLS.fcntlPointer().invokeExact(state, fd, command, arg);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r != -1) {
                return;
            }
            int e = errno(state);
            if (e != EINTR) {
                throw new ErrnoException(e);
            }
        }
    }

    /** {@code pread(fd, buf, buf.byteSize(), offset)}; returns the bytes read, 0 at the end of the file. */
    static long pread(int fd, MemorySegment buf, long offset) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                long r;
                try {
                    r = (long) CALLS.pread().invokeExact(state, fd, buf, buf.byteSize(), offset);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r >= 0) {
                    return r;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** {@code pwrite(fd, buf, buf.byteSize(), offset)}; returns the bytes written. */
    static long pwrite(int fd, MemorySegment buf, long offset) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                long r;
                try {
                    r = (long) CALLS.pwrite().invokeExact(state, fd, buf, buf.byteSize(), offset);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r >= 0) {
                    return r;
                }
                int e = errno(state);
                if (e != EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** {@code "errno 5 (EIO: Input/output error)"}, or just the number for the rare ones. */
    static String describe(int errno) {
        String text = switch (errno) {
            case EPERM -> "EPERM: Operation not permitted";
            case ENOENT -> "ENOENT: No such file or directory";
            case EINTR -> "EINTR: Interrupted system call";
            case 5 -> "EIO: Input/output error";
            case ENXIO -> "ENXIO: No such device or address";
            case 9 -> "EBADF: Bad file descriptor";
            case EAGAIN -> "EAGAIN: Resource temporarily unavailable";
            case 12 -> "ENOMEM: Cannot allocate memory";
            case EACCES -> "EACCES: Permission denied";
            case 16 -> "EBUSY: Device or resource busy";
            case ENODEV -> "ENODEV: No such device";
            case EISDIR -> "EISDIR: Is a directory";
            case EINVAL -> "EINVAL: Invalid argument";
            case 26 -> "ETXTBSY: Text file busy";
            case 27 -> "EFBIG: File too large";
            case 28 -> "ENOSPC: No space left on device";
            case 29 -> "ESPIPE: Illegal seek";
            case 30 -> "EROFS: Read-only file system";
            case ENOLCK -> "ENOLCK: No locks available";
            case ENOSYS -> "ENOSYS: Function not implemented";
            case 40 -> "ELOOP: Too many levels of symbolic links";
            case EOPNOTSUPP -> "EOPNOTSUPP: Operation not supported";
            case 122 -> "EDQUOT: Disk quota exceeded";
            default -> null;
        };
        return text == null ? "errno " + errno : "errno " + errno + " (" + text + ")";
    }
}
