package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The libc calls that reserve, free and cut a file's space ({@code fallocate}, {@code posix_fallocate},
 * {@code ftruncate}). Each downcall handle is linked on its own first call (the first zeroing,
 * discard, resize or create), not on every open.
 */
final class LibcSpace {
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;

    private static final class Fallocate {
        static final MethodHandle HANDLE = LibC.downcall("fallocate",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), LibC.CAPTURE_ERRNO);
    }

    /** posix_fallocate returns the error number instead of setting errno. */
    private static final class PosixFallocate {
        static final MethodHandle HANDLE = LibC.downcall("posix_fallocate",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    }

    private static final class Ftruncate {
        static final MethodHandle HANDLE = LibC.downcall("ftruncate",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), LibC.CAPTURE_ERRNO);
    }

    private LibcSpace() {
    }

    /** {@code fallocate(fd, mode, offset, length)}. */
    static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        LibC.retryingEintr(state -> (int) Fallocate.HANDLE.invokeExact(state, fd, mode, offset, length));
    }

    /** {@code posix_fallocate(fd, offset, length)}; returns 0 or the error number. */
    static int posixFallocate(int fd, long offset, long length) {
        while (true) {
            int r;
            try {
                r = (int) PosixFallocate.HANDLE.invokeExact(fd, offset, length);
            } catch (Throwable t) {
                throw LibC.unexpected(t);
            }
            if (r != Errno.EINTR) {
                return r;
            }
        }
    }

    /** {@code ftruncate(fd, length)}. */
    static void ftruncate(int fd, long length) throws ErrnoException {
        LibC.retryingEintr(state -> (int) Ftruncate.HANDLE.invokeExact(state, fd, length));
    }
}
