package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

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
import java.util.List;
import java.util.Locale;

/**
 * The binding of the Linux libc calls the file storage needs, through {@code java.lang.foreign}, and
 * the basic calls on a descriptor ({@code open}, {@code close}, {@code fstat}, {@code lseek}). The
 * class is its own lazy holder: it looks up every symbol and links {@code open} when it is first used
 * (the first open), not when the provider is loaded. Every other downcall handle is linked on its own
 * first call, in a holder class of its own, here and in the classes by concern ({@link LibcLocks},
 * {@link LibcSpace}, {@link LibcData}): linking one costs milliseconds of class spinning, and a short
 * command such as {@code imago info} needs only four of them. If binding fails (not Linux, an
 * unknown architecture, native access denied, a call missing from libc), {@link #available()} is
 * false and the storage uses portable {@code FileChannel} I/O.
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

    static final int S_IFMT = 0170000;
    static final int S_IFDIR = 0040000;
    static final int S_IFBLK = 0060000;
    static final int S_IFREG = 0100000;

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

    /**
     * The calls linked on first use, here and in the classes by concern: looked up (cheap) with
     * {@code open}, so that a libc without one makes native access unavailable up front, as when all
     * were linked at once.
     */
    private static final List<String> LAZY_SYMBOLS = List.of("close", "lseek", "fallocate", "posix_fallocate",
            "ftruncate", "flock", "fcntl", "pread", "pwrite", "fdatasync");

    /** The layout of the call state the linker captures; the concern classes allocate it too. */
    static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    /** Captures {@code errno} after a call. */
    static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Charset PATH_CHARSET = pathCharset();

    private static final Arch ARCH;
    /** {@code open}, linked with the lookups: its linking is what fails when native access is denied. */
    private static final MethodHandle OPEN;
    private static final String UNAVAILABLE;
    /** libc's symbols, or {@code null} if the calls are not available. */
    private static final SymbolLookup LIBC;
    /** Whether libc has {@code fstat} (glibc 2.33+) rather than only {@code __fxstat}. */
    private static final boolean HAS_FSTAT;

    static {
        Arch arch = arch();
        MethodHandle open = null;
        SymbolLookup libc = null;
        boolean hasFstat = false;
        String why = null;
        if (!System.getProperty("os.name", "").startsWith("Linux")) {
            why = "not Linux (" + System.getProperty("os.name") + ")";
        } else if (arch == null) {
            why = "unsupported architecture " + System.getProperty("os.arch");
        } else {
            try {
                libc = Linker.nativeLinker().defaultLookup();
                hasFstat = libc.find("fstat").isPresent();
                symbol(libc, hasFstat ? "fstat" : "__fxstat");
                for (String name : LAZY_SYMBOLS) {
                    symbol(libc, name);
                }
                open = linkOpen(libc);
            } catch (RuntimeException | LinkageError e) {
                // IllegalCallerException when native access is denied, UnsupportedOperationException
                // when the platform has no linker or libc lacks a symbol
                why = e.toString();
            }
        }
        ARCH = arch;
        OPEN = open;
        UNAVAILABLE = why;
        LIBC = open == null ? null : libc;
        HAS_FSTAT = hasFstat;
    }

    /** {@code close}, linked on its first call. */
    private static final class Close {
        static final MethodHandle HANDLE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    }

    /** {@code lseek}, linked on its first call (sizes of block devices, SEEK_DATA/SEEK_HOLE). */
    private static final class Lseek {
        static final MethodHandle HANDLE = downcall("lseek",
                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    }

    /** {@code fstat}, or {@code __fxstat} with the architecture's version on glibc before 2.33. */
    private static final class Fstat {
        static final MethodHandle HANDLE = HAS_FSTAT
                ? downcall("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO)
                : MethodHandles.insertArguments(downcall("__fxstat",
                        FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO),
                        1, ARCH.statVer); // after the capture segment
    }

    private LibC() {
    }

    /** Whether the native calls are bound. */
    static boolean available() {
        return OPEN != null;
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
    private static MethodHandle linkOpen(SymbolLookup libc) {
        // open is variadic: the mode is the first variadic argument
        return Linker.nativeLinker().downcallHandle(symbol(libc, "open"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2),
                CAPTURE_ERRNO);
    }

    private static MemorySegment symbol(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new UnsupportedOperationException("libc has no " + name));
    }

    /**
     * Links {@code name} from libc for a holder class, which calls this from its static initialiser,
     * after {@link #available()} said yes (the symbol is known to be there).
     */
    @SuppressWarnings("restricted") // Linker::downcallHandle; the module runs with --enable-native-access
    static MethodHandle downcall(String name, FunctionDescriptor function, Linker.Option... options) {
        return Linker.nativeLinker().downcallHandle(symbol(LIBC, name), function, options);
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** One libc call that sets errno through the captured state; returns a negative value on failure. */
    @FunctionalInterface
    interface Call {
        long invoke(MemorySegment state) throws Throwable;
    }

    /**
     * Runs {@code call} until it is not interrupted (EINTR) and returns its non-negative result.
     *
     * @throws ErrnoException with the errno of any other failure
     */
    static long retryingEintr(Call call) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                long r;
                try {
                    r = call.invoke(state);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (r >= 0) {
                    return r;
                }
                int e = errno(state);
                if (e != Errno.EINTR) {
                    throw new ErrnoException(e);
                }
            }
        }
    }

    /** Invoking a handle whose type matches cannot throw a checked exception; rethrow anything else. */
    static RuntimeException unexpected(Throwable t) {
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
                    fd = (int) OPEN.invokeExact(state, name, flags, mode);
                } catch (Throwable t) {
                    throw unexpected(t);
                }
                if (fd >= 0) {
                    return fd;
                }
                int e = errno(state);
                if (e != Errno.EINTR) {
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
                r = (int) Close.HANDLE.invokeExact(state, fd);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r != 0 && errno(state) != Errno.EINTR) {
                throw new ErrnoException(errno(state));
            }
        }
    }

    /** {@code lseek(fd, offset, whence)}; returns the new offset. */
    static long lseek(int fd, long offset, int whence) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long r;
            try {
                r = (long) Lseek.HANDLE.invokeExact(state, fd, offset, whence);
            } catch (Throwable t) {
                throw unexpected(t);
            }
            if (r < 0) {
                throw new ErrnoException(errno(state));
            }
            return r;
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
                r = (int) Fstat.HANDLE.invokeExact(state, fd, buf);
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
}
