package imago.storage.file.internal;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;

/**
 * The libc calls that move data between memory and the file and on to stable media ({@code pread},
 * {@code pwrite}, {@code fdatasync}), through {@link LibC}'s one downcall handle.
 */
final class LibcData {
    private static final MemorySegment PREAD = LibC.symbol("pread");
    private static final MemorySegment PWRITE = LibC.symbol("pwrite");
    private static final MemorySegment FDATASYNC = LibC.symbol("fdatasync");

    private LibcData() {
    }

    /**
     * {@code pread(fd, buf, buf.byteSize(), offset)}; returns the bytes read, 0 at the end of the file.
     *
     * @throws IllegalArgumentException if {@code buf} is not a native segment
     */
    static long pread(int fd, MemorySegment buf, long offset) throws ErrnoException {
        try {
            return LibC.callLong(PREAD, fd, LibC.address(buf), buf.byteSize(), offset);
        } finally {
            Reference.reachabilityFence(buf); // a direct buffer's memory lives as long as the buffer
        }
    }

    /**
     * {@code pwrite(fd, buf, buf.byteSize(), offset)}; returns the bytes written.
     *
     * @throws IllegalArgumentException if {@code buf} is not a native segment
     */
    static long pwrite(int fd, MemorySegment buf, long offset) throws ErrnoException {
        try {
            return LibC.callLong(PWRITE, fd, LibC.address(buf), buf.byteSize(), offset);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** {@code fdatasync(fd)}. */
    static void fdatasync(int fd) throws ErrnoException {
        LibC.callInt(FDATASYNC, fd, 0, 0, 0);
    }
}
