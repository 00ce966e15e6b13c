package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The binding of the Linux libc calls the file storage needs, through {@code java.lang.foreign}, and
 * the basic calls on a descriptor ({@code open}, {@code close}, {@code fstat}, {@code lseek}). The
 * class is its own lazy holder: it looks up every symbol and links its one downcall handle when it is
 * first used (the first open), not when the provider is loaded. If binding fails (not Linux, an
 * unknown architecture, native access denied, a call missing from libc), {@link #available()} is
 * false and the storage uses portable {@code FileChannel} I/O.
 *
 * <p><b>One downcall shape for every call.</b> Linking a downcall handle spins a stub class and a dozen
 * lambda forms per distinct function type, which no AOT cache of JDK 25 keeps: ~10-30 ms each at the
 * start of every process. So every call, here and in the classes by concern ({@link LibcLocks},
 * {@link LibcSpace}, {@link LibcData}, {@link LibcCopy}), goes through one handle of type
 * {@code long f(long, long, long, long, long, long)}, variadic from the third argument, given the
 * function's address on each call: the JDK links the stub once. This is exact on the two ABIs supported (System V
 * x86-64 and Linux AAPCS64): six integer arguments travel in the same integer registers whether they are
 * declared {@code int}, {@code long} or a pointer, fixed or variadic (the callee reads the low 32 bits
 * of an {@code int}); a variadic call only adds the vector-register count in {@code al} on x86-64, which
 * a fixed-argument function ignores and which {@code open} and {@code fcntl}, the variadic ones, need;
 * unused trailing arguments are ignored by the callee; and an {@code int} result is the low half of the
 * result register (the upper half is undefined), which {@link #callInt} keeps. Pointers are passed as
 * addresses of native segments that the caller keeps alive across the call.
 *
 * <p>Each call returns its result or throws {@link ErrnoException} with the {@code errno} captured by
 * the linker; calls that may be interrupted by a signal are retried on {@code EINTR}. The fields of C
 * structs are read and written through {@link #fields}, not through value layouts.
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
     * The calls of the classes by concern, looked up with the calls of this class, so that a libc without
     * one makes native access unavailable up front.
     */
    private static final List<String> OTHER_SYMBOLS = List.of("fallocate", "posix_fallocate", "ftruncate", "flock",
            "fcntl", "pread", "pwrite", "fdatasync");

    /** The layout of the call state the linker captures; callers allocate it for {@link #callInt}. */
    static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    /** Captures {@code errno} after a call. */
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    /**
     * Where {@code errno} is in the captured state, read with a plain access: a layout's var handle, or
     * even {@code byteOffset} of a layout path, would spin ~5 ms of lambda forms at start-up.
     */
    private static final int ERRNO_OFFSET = errnoOffset();
    private static final Charset PATH_CHARSET = pathCharset();

    private static final Arch ARCH;
    /**
     * {@code (function, state, a, b, c, d, e, f) -> long}: the one downcall handle, linked with the lookups: its
     * linking is what fails when native access is denied.
     */
    private static final MethodHandle CALL;
    private static final String UNAVAILABLE;
    /** libc's symbols, or {@code null} if the calls are not available. */
    private static final SymbolLookup LIBC;
    private static final MemorySegment OPEN;
    private static final MemorySegment CLOSE;
    private static final MemorySegment LSEEK;
    /** {@code fstat}, or {@code __fxstat} (with the architecture's version first) on glibc before 2.33. */
    private static final MemorySegment FSTAT;
    private static final boolean HAS_FSTAT;

    static {
        Arch arch = arch();
        MethodHandle call = null;
        SymbolLookup libc = null;
        MemorySegment open = null;
        MemorySegment close = null;
        MemorySegment lseek = null;
        MemorySegment fstat = null;
        boolean hasFstat = false;
        String why = null;
        if (!System.getProperty("os.name", "").startsWith("Linux")) {
            why = "not Linux (" + System.getProperty("os.name") + ")";
        } else if (arch == null) {
            why = "unsupported architecture " + System.getProperty("os.arch");
        } else {
            try {
                libc = Linker.nativeLinker().defaultLookup();
                Optional<MemorySegment> fstatSymbol = libc.find("fstat");
                hasFstat = fstatSymbol.isPresent();
                fstat = hasFstat ? fstatSymbol.get() : symbol(libc, "__fxstat");
                open = symbol(libc, "open");
                close = symbol(libc, "close");
                lseek = symbol(libc, "lseek");
                for (String name : OTHER_SYMBOLS) {
                    symbol(libc, name);
                }
                call = link();
            } catch (RuntimeException | LinkageError e) {
                // IllegalCallerException when native access is denied, UnsupportedOperationException
                // when the platform has no linker or libc lacks a symbol
                why = e.toString();
            }
        }
        ARCH = arch;
        CALL = call;
        UNAVAILABLE = why;
        LIBC = call == null ? null : libc;
        OPEN = open;
        CLOSE = close;
        LSEEK = lseek;
        FSTAT = fstat;
        HAS_FSTAT = hasFstat;
    }

    private LibC() {
    }

    /** Whether the native calls are bound. */
    static boolean available() {
        return CALL != null;
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

    /** The offset of {@code errno} in {@link #CAPTURE}: the sizes of the members before it (padding is a member too). */
    private static int errnoOffset() {
        int offset = 0;
        for (MemoryLayout member : CAPTURE.memberLayouts()) {
            if (member.name().orElse("").equals("errno")) {
                return offset;
            }
            offset += (int) member.byteSize();
        }
        throw new IllegalStateException("the linker captures no errno: " + CAPTURE);
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
    private static MethodHandle link() {
        return Linker.nativeLinker().downcallHandle(
                FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                Linker.Option.firstVariadicArg(2), CAPTURE_ERRNO);
    }

    private static MemorySegment symbol(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new UnsupportedOperationException("libc has no " + name));
    }

    /**
     * The address of libc's {@code name}, for the classes by concern, after {@link #available()} said yes
     * (the symbol is known to be there).
     */
    static MemorySegment symbol(String name) {
        return symbol(LIBC, name);
    }

    static int errno(MemorySegment state) {
        return fields(state).getInt(ERRNO_OFFSET);
    }

    /**
     * A native segment as a buffer in the native byte order, to read and write the fields of a C struct. Not
     * {@code segment.get(JAVA_INT, offset)}: a value layout's first access builds its var handle, which spins ~10
     * lambda-form classes (~3-4 ms at start-up, on the first open) that no AOT cache of JDK 25 keeps; a direct
     * buffer's accessors are plain methods. The segment must stay alive while the buffer is used.
     */
    static ByteBuffer fields(MemorySegment segment) {
        return segment.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    /**
     * The address of a native segment, to pass as a pointer argument; the caller keeps the segment alive
     * (its arena open, its buffer reachable) until the call returns.
     */
    static long address(MemorySegment segment) {
        if (!segment.isNative()) {
            throw new IllegalArgumentException("not a native segment: " + segment);
        }
        return segment.address();
    }

    /**
     * The address of libc's {@code name}, or empty if libc has no such call (a newer one than the storage
     * needs, looked up when first used).
     */
    static Optional<MemorySegment> optionalSymbol(String name) {
        return LIBC.find(name);
    }

    /**
     * Calls {@code function(a, b, c, d)} (arguments it does not take are ignored) and returns its result
     * register whole, with {@code errno} in {@code state}.
     */
    static long invoke(MemorySegment state, MemorySegment function, long a, long b, long c, long d) {
        return invoke(state, function, a, b, c, d, 0, 0);
    }

    /** {@link #invoke(MemorySegment, MemorySegment, long, long, long, long)} with six arguments. */
    static long invoke(MemorySegment state, MemorySegment function, long a, long b, long c, long d, long e, long f) {
        try {
            return (long) CALL.invokeExact(function, state, a, b, c, d, e, f);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * Calls {@code function}, which returns an {@code int}, until it is not interrupted (EINTR), and
     * returns its non-negative result.
     *
     * @throws ErrnoException with the errno of any other failure
     */
    static int callInt(MemorySegment state, MemorySegment function, long a, long b, long c, long d)
            throws ErrnoException {
        while (true) {
            int r = (int) invoke(state, function, a, b, c, d); // the upper half of the register is undefined
            if (r >= 0) {
                return r;
            }
            failed(state);
        }
    }

    /** {@link #callInt} with a call state of its own. */
    static int callInt(MemorySegment function, long a, long b, long c, long d) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            return callInt(arena.allocate(CAPTURE), function, a, b, c, d);
        }
    }

    /** {@link #callInt} for a function that returns a {@code long} ({@code ssize_t}, {@code off_t}). */
    static long callLong(MemorySegment function, long a, long b, long c, long d) throws ErrnoException {
        return callLong(function, a, b, c, d, 0, 0);
    }

    /** {@link #callLong(MemorySegment, long, long, long, long)} with six arguments. */
    static long callLong(MemorySegment function, long a, long b, long c, long d, long e, long f)
            throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            while (true) {
                long r = invoke(state, function, a, b, c, d, e, f);
                if (r >= 0) {
                    return r;
                }
                failed(state);
            }
        }
    }

    /** After a failed call: returns to retry it on EINTR, else throws. */
    private static void failed(MemorySegment state) throws ErrnoException {
        int e = errno(state);
        if (e != Errno.EINTR) {
            throw new ErrnoException(e);
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
            // segment to segment: copying from the array itself would first spin a type switch (~1 ms)
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, name, 0, bytes.length);
            return callInt(state, OPEN, address(name), flags, mode, 0);
        }
    }

    /** {@code close(fd)}; never retried: on Linux the descriptor is gone even after EINTR. */
    static void close(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int r = (int) invoke(state, CLOSE, fd, 0, 0, 0);
            if (r != 0 && errno(state) != Errno.EINTR) {
                throw new ErrnoException(errno(state));
            }
        }
    }

    /** {@code lseek(fd, offset, whence)}; returns the new offset. */
    static long lseek(int fd, long offset, int whence) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long r = invoke(state, LSEEK, fd, offset, whence, 0);
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
            int r = HAS_FSTAT
                    ? (int) invoke(state, FSTAT, fd, address(buf), 0, 0)
                    : (int) invoke(state, FSTAT, ARCH.statVer, fd, address(buf), 0);
            if (r != 0) {
                throw new ErrnoException(errno(state));
            }
            ByteBuffer stat = fields(buf);
            return new Stat(stat.getInt(ARCH.stModeOffset), stat.getLong(ST_SIZE), stat.getLong(ST_BLOCKS));
        }
    }
}
