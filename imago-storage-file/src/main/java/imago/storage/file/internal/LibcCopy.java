package imago.storage.file.internal;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * {@code copy_file_range(2)}: the kernel copies bytes from one file to another without passing them through user
 * memory (and clones them where the file system shares extents). It goes through {@link LibC}'s one downcall
 * handle; a libc without the call (glibc before 2.27) leaves it unavailable, and the storage copies through a
 * buffer.
 */
final class LibcCopy {
    private static final class CopyFileRange {
        /** The symbol, or {@code null} if libc has no {@code copy_file_range}. */
        static final MemorySegment SYMBOL = LibC.optionalSymbol("copy_file_range").orElse(null);
    }

    private LibcCopy() {
    }

    /** Whether libc has {@code copy_file_range}. */
    static boolean available() {
        return CopyFileRange.SYMBOL != null;
    }

    /**
     * {@code copy_file_range(in, &inOffset, out, &outOffset, length, 0)}: copies at most {@code length} bytes at
     * the given offsets, leaving both file positions alone; returns how many, 0 at the end of {@code in}.
     *
     * @throws ErrnoException if the call fails ({@code EXDEV}, {@code EINVAL}, {@code EOPNOTSUPP} where the
     *     kernel or file system cannot copy between these files)
     */
    static long copyFileRange(int in, long inOffset, int out, long outOffset, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offsets = arena.allocate(JAVA_LONG, 2);
            LibC.fields(offsets).putLong(0, inOffset).putLong(8, outOffset);
            long at = LibC.address(offsets);
            // the kernel advances the offsets only by what it copied, so a retry after EINTR starts over right
            return LibC.callLong(CopyFileRange.SYMBOL, in, at, out, at + 8, length, 0);
        }
    }
}
