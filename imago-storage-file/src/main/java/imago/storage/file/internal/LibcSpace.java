package imago.storage.file.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The libc calls that reserve, free and cut a file's space ({@code fallocate}, {@code posix_fallocate},
 * {@code ftruncate}), through {@link LibC}'s one downcall handle.
 */
final class LibcSpace {
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;

    private static final MemorySegment FALLOCATE = LibC.symbol("fallocate");
    private static final MemorySegment POSIX_FALLOCATE = LibC.symbol("posix_fallocate");
    private static final MemorySegment FTRUNCATE = LibC.symbol("ftruncate");

    private LibcSpace() {
    }

    /** {@code fallocate(fd, mode, offset, length)}. */
    static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        LibC.callInt(FALLOCATE, fd, mode, offset, length);
    }

    /** {@code posix_fallocate(fd, offset, length)}; returns 0 or the error number (it does not set errno). */
    static int posixFallocate(int fd, long offset, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(LibC.CAPTURE);
            while (true) {
                int r = (int) LibC.invoke(state, POSIX_FALLOCATE, fd, offset, length, 0);
                if (r != Errno.EINTR) {
                    return r;
                }
            }
        }
    }

    /** {@code ftruncate(fd, length)}. */
    static void ftruncate(int fd, long length) throws ErrnoException {
        LibC.callInt(FTRUNCATE, fd, length, 0, 0);
    }
}
