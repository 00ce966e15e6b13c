package imago.storage.file.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * The libc calls behind the image locks: open file description locks ({@code fcntl(F_OFD_SETLK)},
 * {@code fcntl(F_OFD_GETLK)}) and {@code flock}, through {@link LibC}'s one downcall handle.
 */
final class LibcLocks {
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
    private static final int L_TYPE = 0;
    private static final int L_WHENCE = 2;
    private static final int L_START = 8;
    private static final int L_LEN = 16;
    private static final int L_PID = 24;

    private static final MemorySegment FLOCK = LibC.symbol("flock");
    /** {@code fcntl} with a {@code struct flock} pointer, the first variadic argument. */
    private static final MemorySegment FCNTL = LibC.symbol("fcntl");

    private LibcLocks() {
    }

    /** {@code flock(fd, operation)}. */
    static void flock(int fd, int operation) throws ErrnoException {
        LibC.callInt(FLOCK, fd, operation, 0, 0);
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
            MemorySegment state = arena.allocate(LibC.CAPTURE);
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
            MemorySegment state = arena.allocate(LibC.CAPTURE);
            MemorySegment lock = flock(arena, F_WRLCK, start, length);
            fcntl(state, fd, F_OFD_GETLK, lock);
            return LibC.fields(lock).getShort(L_TYPE) != F_UNLCK;
        }
    }

    /** A {@code struct flock}; {@code l_pid} must be 0 for OFD locks. */
    private static MemorySegment flock(Arena arena, short type, long start, long length) {
        MemorySegment lock = arena.allocate(FLOCK_SIZE, 8); // zeroed
        ByteBuffer fields = LibC.fields(lock);
        fields.putShort(L_TYPE, type);
        fields.putShort(L_WHENCE, SEEK_SET);
        fields.putLong(L_START, start);
        fields.putLong(L_LEN, length);
        fields.putInt(L_PID, 0);
        return lock;
    }

    private static void fcntl(MemorySegment state, int fd, int command, MemorySegment arg) throws ErrnoException {
        LibC.callInt(state, FCNTL, fd, command, LibC.address(arg), 0);
    }
}
