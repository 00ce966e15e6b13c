package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;

import imago.api.ImageException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Direct I/O: {@code pread} and {@code pwrite} on the O_DIRECT descriptor, with aligned offsets and
 * lengths, through a bounce buffer when the caller's memory is not aligned.
 */
final class DirectIo {
    /** The alignment of offsets, lengths and memory that O_DIRECT gets here. */
    static final int ALIGNMENT = 4096;

    private final FileHandle handle;
    private final String name;
    private final int fd;
    private final int alignment = ALIGNMENT;

    DirectIo(FileHandle handle) {
        this.handle = handle;
        this.name = handle.name();
        this.fd = handle.fd();
    }

    private void checkAligned(long offset, int length) {
        if (((offset | length) & (alignment - 1)) != 0) {
            throw new IllegalArgumentException(name + ": direct I/O needs " + alignment
                    + "-byte aligned offsets and lengths, got " + offset + "+" + length);
        }
    }

    private boolean alignedMemory(ByteBuffer buf) {
        return buf.isDirect() && (MemorySegment.ofBuffer(buf).address() & (alignment - 1)) == 0;
    }

    /** Reads {@code dst} full from {@code offset}; what lies past the end of the file reads as zeroes. */
    void read(ByteBuffer dst, long offset) throws IOException {
        int length = dst.remaining();
        checkAligned(offset, length);
        try (Arena arena = Arena.ofConfined()) {
            boolean bounce = !alignedMemory(dst);
            MemorySegment seg = bounce ? arena.allocate(length, alignment) : MemorySegment.ofBuffer(dst);
            long done = 0;
            handle.enter();
            try {
                while (done < length) {
                    long n = LibcData.pread(fd, seg.asSlice(done), offset + done);
                    if (n == 0) {
                        break;
                    }
                    done += n;
                    if ((done & (alignment - 1)) != 0) {
                        break; // an O_DIRECT read ends unaligned only at the end of the file
                    }
                }
            } catch (ErrnoException e) {
                throw failure(name, "pread at " + offset + "+" + length, e);
            } finally {
                handle.exit();
            }
            seg.asSlice(done).fill((byte) 0); // past the end of the file
            if (bounce) {
                MemorySegment.copy(seg, 0, MemorySegment.ofBuffer(dst), 0, length);
            }
        }
        dst.position(dst.limit());
    }

    /** Writes all of {@code src} at {@code offset}. */
    void write(ByteBuffer src, long offset) throws IOException {
        int length = src.remaining();
        checkAligned(offset, length);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg;
            if (alignedMemory(src)) {
                seg = MemorySegment.ofBuffer(src);
            } else {
                seg = arena.allocate(length, alignment);
                MemorySegment.copy(MemorySegment.ofBuffer(src), 0, seg, 0, length);
            }
            nativeWrite(seg, offset);
        }
        src.position(src.limit());
    }

    /** Writes all of {@code seg}, which must be aligned, at {@code offset}. */
    void nativeWrite(MemorySegment seg, long offset) throws IOException {
        long length = seg.byteSize();
        long done = 0;
        handle.enter();
        try {
            while (done < length) {
                long n = LibcData.pwrite(fd, seg.asSlice(done), offset + done);
                if (n == 0) {
                    throw new ImageException(name, -1, "pwrite at " + (offset + done) + "+" + (length - done)
                            + " wrote nothing", null);
                }
                done += n;
            }
        } catch (ErrnoException e) {
            throw failure(name, "pwrite at " + offset + "+" + length, e);
        } finally {
            handle.exit();
        }
    }
}
