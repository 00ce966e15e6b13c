package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The libc calls that move data between memory and the file and on to stable media ({@code pread},
 * {@code pwrite}, {@code fdatasync}). Each downcall handle is linked on its own first call (the first direct
 * read, direct write or sync), not on every open.
 */
final class LibcData {
    private static final class Pread {
        static final MethodHandle HANDLE = LibC.downcall("pread",
                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), LibC.CAPTURE_ERRNO);
    }

    private static final class Pwrite {
        static final MethodHandle HANDLE = LibC.downcall("pwrite",
                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), LibC.CAPTURE_ERRNO);
    }

    private static final class Fdatasync {
        static final MethodHandle HANDLE = LibC.downcall("fdatasync",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private LibcData() {
    }

    /** {@code pread(fd, buf, buf.byteSize(), offset)}; returns the bytes read, 0 at the end of the file. */
    static long pread(int fd, MemorySegment buf, long offset) throws ErrnoException {
        return LibC.retryingEintr(state -> (long) Pread.HANDLE.invokeExact(state, fd, buf, buf.byteSize(), offset));
    }

    /** {@code pwrite(fd, buf, buf.byteSize(), offset)}; returns the bytes written. */
    static long pwrite(int fd, MemorySegment buf, long offset) throws ErrnoException {
        return LibC.retryingEintr(state -> (long) Pwrite.HANDLE.invokeExact(state, fd, buf, buf.byteSize(), offset));
    }

    /** {@code fdatasync(fd)}. */
    static void fdatasync(int fd) throws ErrnoException {
        LibC.retryingEintr(state -> (int) Fdatasync.HANDLE.invokeExact(state, fd));
    }
}
