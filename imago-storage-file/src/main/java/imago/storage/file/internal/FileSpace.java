package imago.storage.file.internal;

import static imago.storage.file.internal.Failures.failure;
import static imago.storage.file.internal.Failures.unsupported;

import imago.api.Feature;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Objects;

/**
 * The file's size and space: zeroing (punch hole, zero range, punch and re-allocate, zero buffers),
 * discarding, truncating and growing with each preallocation mode. What the file system refuses
 * ({@code EOPNOTSUPP}, {@code ENOSYS}, {@code EINVAL} for an unsupported mode) is remembered per
 * file, so a failing call is not retried on every request.
 */
final class FileSpace {
    private static final int CHUNK = 1 << 20;

    private final FileHandle handle;
    private final String name;
    /** The native descriptor, or -1 without native access. */
    private final int fd;
    /** Block devices report their size through lseek(SEEK_END), not st_size. */
    private final boolean blockDevice;
    private final ChannelIo channels;
    private final DirectIo directIo;
    private final boolean direct;
    private final int alignment;

    // What the file system refused; set once, read without locking.
    private volatile boolean noPunchHole;
    private volatile boolean noZeroRange;
    private volatile boolean noFallocate;

    FileSpace(FileHandle handle, boolean blockDevice, ChannelIo channels, DirectIo directIo, boolean direct,
            int alignment) {
        this.handle = handle;
        this.name = handle.name();
        this.fd = handle.fd();
        this.blockDevice = blockDevice;
        this.channels = channels;
        this.directIo = directIo;
        this.direct = direct;
        this.alignment = alignment;
    }

    /** The file's size: {@code fstat}, {@code lseek(SEEK_END)} for a block device, or the channel's. */
    long size() throws IOException {
        if (fd < 0) {
            return channels.withChannel("size", 0, -1, FileChannel::size);
        }
        handle.enter();
        try {
            return blockDevice ? LibC.lseek(fd, 0, LibC.SEEK_END) : LibC.fstat(fd).size();
        } catch (ErrnoException e) {
            throw failure(name, "fstat", e);
        } finally {
            handle.exit();
        }
    }

    /**
     * Zeroes a non-empty range: with {@code mayUnmap}, punches a hole ({@code FALLOC_FL_PUNCH_HOLE}); else,
     * or where that is refused, {@code FALLOC_FL_ZERO_RANGE}; else a hole re-allocated with
     * {@code fallocate}; else zero-filled buffers. A range past the end grows the file, as a write would.
     */
    void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        if (fd >= 0) {
            if (mayUnmap && !noPunchHole && punchAndExtend(offset, length)) {
                return;
            }
            if (!noZeroRange && fallocate(LibcSpace.FALLOC_FL_ZERO_RANGE, offset, length)) {
                return; // without KEEP_SIZE, so a range past the end grows the file
            }
            if (!noPunchHole && !noFallocate && punchAndAllocate(offset, length)) {
                return;
            }
        }
        writeZeroBuffers(offset, length);
    }

    /** Punches the part before the end of the file, then grows the file sparsely to the end of the range. */
    private boolean punchAndExtend(long offset, long length) throws IOException {
        long end = offset + length;
        long size = size();
        long inside = Math.min(end, size);
        if (inside > offset && !fallocate(LibcSpace.FALLOC_FL_PUNCH_HOLE | LibcSpace.FALLOC_FL_KEEP_SIZE, offset,
                inside - offset)) {
            return false;
        }
        if (end > size) {
            // One zero byte at the end grows the file and leaves a hole before it. Unlike ftruncate it
            // can never cut off a concurrent write that has already grown the file further.
            channels.write(zeroBuffer(1), end - 1);
        }
        return true;
    }

    /** qemu's fallback when zero range is refused: punch, then allocate the range again. */
    private boolean punchAndAllocate(long offset, long length) throws IOException {
        long inside = Math.min(offset + length, size());
        if (inside > offset && !fallocate(LibcSpace.FALLOC_FL_PUNCH_HOLE | LibcSpace.FALLOC_FL_KEEP_SIZE, offset,
                inside - offset)) {
            return false;
        }
        return fallocate(0, offset, length);
    }

    /** Punches a hole where the file system can, so the range reads as zeroes; else does nothing. */
    void discard(long offset, long length) throws IOException {
        if (length == 0 || fd < 0 || noPunchHole) {
            return;
        }
        fallocate(LibcSpace.FALLOC_FL_PUNCH_HOLE | LibcSpace.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /**
     * Cuts or grows the file to {@code size}. Shrinking truncates whatever {@code preallocation} says.
     * Growing: {@code OFF} and {@code METADATA} leave a hole, {@code FALLOC} reserves the new range with
     * {@code posix_fallocate}, {@code FULL} writes zeroes to it. A failed {@code FALLOC} or {@code FULL}
     * grow restores the old size.
     */
    void resize(long size, Preallocation preallocation) throws IOException {
        long current = size();
        if (size <= current) {
            if (size < current) {
                truncate(size);
            }
            return;
        }
        switch (preallocation) {
            case OFF, METADATA -> growSparse(size);
            case FALLOC -> preallocate(current, size);
            case FULL -> {
                try {
                    writeZeroBuffers(current, size - current);
                } catch (IOException e) {
                    try {
                        truncate(current);
                    } catch (IOException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                    throw e;
                }
            }
        }
    }

    private void truncate(long size) throws IOException {
        if (fd < 0) {
            channels.withChannel("truncate to " + size, 0, -1, ch -> ch.truncate(size));
            return;
        }
        handle.enter();
        try {
            LibcSpace.ftruncate(fd, size);
        } catch (ErrnoException e) {
            throw failure(name, "ftruncate to " + size, e);
        } finally {
            handle.exit();
        }
    }

    private void growSparse(long size) throws IOException {
        if (fd >= 0) {
            truncate(size);
        } else {
            channels.write(zeroBuffer(1), size - 1); // a FileChannel grows only by writing
        }
    }

    private void preallocate(long current, long size) throws IOException {
        if (fd < 0) {
            throw new UnsupportedFeatureException(name, Feature.HOST, "falloc preallocation",
                    "falloc preallocation needs native access (java.lang.foreign on Linux): "
                            + Objects.requireNonNullElse(LibC.unavailableReason(), "disabled"));
        }
        int error;
        handle.enter();
        try {
            error = LibcSpace.posixFallocate(fd, current, size - current);
        } finally {
            handle.exit();
        }
        if (error == 0) {
            return;
        }
        if (error == Errno.EOPNOTSUPP || error == Errno.ENOSYS || error == Errno.EINVAL) {
            throw new UnsupportedFeatureException(name, Feature.HOST, "falloc preallocation",
                    "falloc preallocation is not supported here: posix_fallocate failed: " + Errno.describe(error));
        }
        IOException failure = failure(name, "posix_fallocate at " + current + "+" + (size - current), error);
        try {
            truncate(current); // drop what was reserved before the failure
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
        throw failure;
    }

    /** Whether this file still gets holes punched (native access, not refused by the file system). */
    boolean punchesHoles() {
        return fd >= 0 && !noPunchHole;
    }

    /** Behaves as on a file system that refuses the given calls, as if each had failed with EOPNOTSUPP. */
    void refuse(boolean punchHole, boolean zeroRange, boolean fallocate) {
        noPunchHole |= punchHole;
        noZeroRange |= zeroRange;
        noFallocate |= fallocate;
    }

    /** Runs fallocate; {@code false} (remembered) if the file system refuses the mode. */
    private boolean fallocate(int mode, long offset, long length) throws IOException {
        handle.enter();
        try {
            LibcSpace.fallocate(fd, mode, offset, length);
            return true;
        } catch (ErrnoException e) {
            if (!unsupported(e.errno())) {
                throw failure(name, "fallocate(" + modeName(mode) + ") at " + offset + "+" + length, e);
            }
            if ((mode & LibcSpace.FALLOC_FL_PUNCH_HOLE) != 0) {
                noPunchHole = true;
            } else if ((mode & LibcSpace.FALLOC_FL_ZERO_RANGE) != 0) {
                noZeroRange = true;
            } else {
                noFallocate = true;
            }
            return false;
        } finally {
            handle.exit();
        }
    }

    private static String modeName(int mode) {
        if ((mode & LibcSpace.FALLOC_FL_PUNCH_HOLE) != 0) {
            return "PUNCH_HOLE";
        }
        return (mode & LibcSpace.FALLOC_FL_ZERO_RANGE) != 0 ? "ZERO_RANGE" : "0";
    }

    /**
     * Writes zeroes from one shared buffer, in chunks of at most 1 MiB. With direct I/O the aligned
     * middle goes through the O_DIRECT descriptor and the unaligned edges through the buffered channel
     * (the kernel keeps the two coherent).
     */
    private void writeZeroBuffers(long offset, long length) throws IOException {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long n;
            if (direct && (pos & (alignment - 1)) == 0 && end - pos >= alignment) {
                n = Math.min(CHUNK, (end - pos) & -alignment);
                directIo.nativeWrite(Zeroes.SEGMENT.asSlice(0, n), pos);
            } else {
                long stop = direct ? Math.min(end, (pos + alignment) & -alignment) : Math.min(end, pos + CHUNK);
                n = stop - pos;
                channels.write(zeroBuffer((int) n), pos);
            }
            pos += n;
        }
    }

    private static ByteBuffer zeroBuffer(int length) {
        return Zeroes.BUFFER.slice(0, length);
    }

    /** One shared, aligned megabyte of zeroes; made on first use. */
    private static final class Zeroes {
        static final MemorySegment SEGMENT = Arena.global().allocate(CHUNK, DirectIo.ALIGNMENT);
        static final ByteBuffer BUFFER = SEGMENT.asByteBuffer().asReadOnlyBuffer();
    }
}
