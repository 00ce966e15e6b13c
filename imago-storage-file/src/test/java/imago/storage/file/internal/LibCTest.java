package imago.storage.file.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link LibC}'s one downcall shape: {@code int} and {@code long} results, negative ones with their
 * {@code errno}, and pointer arguments, through the calls of each kind.
 */
class LibCTest {
    private static final int EBADF = 9;

    @TempDir
    Path dir;

    @BeforeEach
    void nativeAccess() {
        assumeTrue(LibC.available(), () -> "native access: " + LibC.unavailableReason());
    }

    @Test
    void intResultsAndTheirErrno() throws IOException, ErrnoException {
        // open returns -1 in the low half of the register: read whole, it would be a descriptor
        ErrnoException missing = assertThrows(ErrnoException.class,
                () -> LibC.open(dir.resolve("missing").toString(), LibC.O_RDONLY, 0));
        assertEquals(Errno.ENOENT, missing.errno());
        assertEquals(EBADF, assertThrows(ErrnoException.class, () -> LibC.fstat(-1)).errno());
        assertEquals(EBADF, assertThrows(ErrnoException.class, () -> LibC.close(-1)).errno());
        assertEquals(EBADF, assertThrows(ErrnoException.class, () -> LibcSpace.ftruncate(-1, 0)).errno());

        Path file = Files.write(dir.resolve("f"), new byte[12345]);
        int fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        try {
            LibC.Stat stat = LibC.fstat(fd); // a pointer argument: the kernel fills the buffer
            assertTrue(stat.isRegularFile());
            assertEquals(12345, stat.size());
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void longResultsKeepTheirUpperHalf() throws IOException, ErrnoException {
        Path file = dir.resolve("sparse");
        long size = 5L << 30; // past 32 bits
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(size);
        }
        int fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        try {
            assertEquals(size, LibC.lseek(fd, 0, LibC.SEEK_END));
            assertEquals(size, LibC.fstat(fd).size());
            try (Arena arena = Arena.ofConfined()) {
                assertEquals(0, LibcData.pread(fd, arena.allocate(4096), size)); // at the end: 0 bytes
                assertEquals(4096, LibcData.pread(fd, arena.allocate(4096), size - 8192));
            }
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void pointersAreNativeSegmentsOnly() {
        MemorySegment heap = MemorySegment.ofArray(new byte[16]);
        // a heap segment's address() is an offset into its array, not memory the kernel may write
        assertThrows(IllegalArgumentException.class, () -> LibC.address(heap));
        assertThrows(IllegalArgumentException.class, () -> LibcData.pread(0, heap, 0));
    }
}
