package imago.api.spi;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A positional byte store: a file, a block of memory. Thread-safe for requests on disjoint ranges.
 *
 * <p>Reads are always complete: bytes past the end of the store read as zeroes (as a short read of a
 * file does in QEMU), so a format may read a table that a truncated file cuts short and validate it.
 * Writes past the end grow the store.
 */
public interface Storage extends Closeable {

    /** The name used in messages and for resolving relative names: a path or a {@code memory:} name. */
    String name();

    /** Where this storage lives, for resolving names stored inside images. */
    StorageLocation location();

    /**
     * Current size in bytes.
     *
     * @throws IOException if the size cannot be read
     */
    long size() throws IOException;

    /** Whether the storage was opened read-only. */
    boolean readOnly();

    /**
     * Fills {@code dst} with the bytes from {@code offset}; bytes past the end read as zero.
     *
     * @throws IOException if the read fails
     */
    void read(ByteBuffer dst, long offset) throws IOException;

    /**
     * Writes all of {@code src} at {@code offset}, growing the store if needed.
     *
     * @throws imago.api.ReadOnlyImageException if read-only
     * @throws IOException if the write fails
     */
    void write(ByteBuffer src, long offset) throws IOException;

    /**
     * Makes the range read as zeroes, deallocating it when {@code mayUnmap} allows and the medium can.
     *
     * @implSpec The default writes zero-filled buffers.
     * @throws IOException if the operation fails
     */
    default void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        ZeroBuffers.write(this, offset, length);
    }

    /**
     * Writes {@code length} bytes of {@code source}, from {@code sourceOffset} on, at {@code offset} here: what
     * reading them from {@code source} (bytes past its end read as zeroes) and {@link #write writing} them here
     * would do, bit for bit. A storage that can have the operating system copy between itself and {@code source}
     * without passing the bytes through this process's memory overrides it (two local files:
     * {@code copy_file_range}).
     *
     * @implSpec The default reads and writes through a buffer of at most 1 MiB.
     * @throws imago.api.ReadOnlyImageException if read-only
     * @throws IOException if reading {@code source} or writing here fails
     */
    default void copyFrom(Storage source, long sourceOffset, long length, long offset) throws IOException {
        if (length < 0) {
            throw new IllegalArgumentException(name() + ": negative copy length " + length);
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(length, 1 << 20));
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(buffer.capacity(), length - done);
            buffer.clear().limit(n);
            source.read(buffer, sourceOffset + done);
            write(buffer.flip(), offset + done);
            done += n;
        }
    }

    /**
     * Gives the range back to the medium if it can; afterwards it reads as zeroes or keeps its data.
     *
     * @implSpec The default does nothing.
     * @throws IOException if the operation fails
     */
    default void discard(long offset, long length) throws IOException {
    }

    /**
     * Hands buffered writes to the operating system.
     *
     * @throws IOException if the flush fails
     */
    void flush() throws IOException;

    /**
     * Makes all writes durable on stable media (fdatasync).
     *
     * @throws IOException if the sync fails
     */
    void sync() throws IOException;

    /**
     * Grows or shrinks the store; grown space is reserved as {@code preallocation} says.
     *
     * @throws imago.api.UnsupportedFeatureException if the mode is not supported
     * @throws IOException if the resize fails
     */
    void resize(long size, Preallocation preallocation) throws IOException;

    /** The alignment (a power of two) that offsets and lengths of requests must have; 1 for none. */
    default int requestAlignment() {
        return 1;
    }

    /** The alignment (a power of two) that buffers of requests must have; 1 for none. */
    default int memoryAlignment() {
        return 1;
    }

    /**
     * Resolves a name stored inside an image (a backing or data file name) against this storage's
     * location. The name is never parsed as a protocol or option string.
     *
     * @implSpec The default resolves nothing.
     */
    default Optional<StorageLocation> resolve(String storedName) {
        return Optional.empty();
    }

    /**
     * Whether the bytes from {@code offset} hold data or are a hole (read as zero), for at most
     * {@code maxLength} bytes, as {@code lseek(SEEK_DATA/SEEK_HOLE)} tells.
     *
     * @implSpec The default reports everything up to the end as data and the rest as a hole.
     * @throws IOException if the storage cannot be queried
     */
    default StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        long size = size();
        if (offset >= size) {
            return new StorageExtent(offset, maxLength, false);
        }
        return new StorageExtent(offset, Math.min(maxLength, size - offset), true);
    }

    /**
     * When the storage was last modified, when it can tell (a file's mtime). Formats that record their
     * backing file's modification time (cow) compare it.
     *
     * @implSpec The default does not know.
     * @throws IOException if the storage cannot be queried
     */
    default java.util.Optional<java.time.Instant> lastModified() throws IOException {
        return java.util.Optional.empty();
    }

    /**
     * Bytes the storage occupies on its medium (qemu-img's "disk size"), when known.
     *
     * @implSpec The default does not know.
     * @throws IOException if the storage cannot be queried
     */
    default OptionalLong allocatedSize() throws IOException {
        return OptionalLong.empty();
    }
}
