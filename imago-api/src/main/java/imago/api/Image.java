package imago.api;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * An open disk image together with its backing chain. Closing it is idempotent.
 *
 * <p>All offsets are guest (virtual) byte offsets. Requests must lie inside {@code [0, size())}:
 * a request past the end is a caller mistake and throws {@link IllegalArgumentException}; it is never
 * silently truncated. Implementations are thread-safe: many threads (virtual threads included) may
 * read and write one image at once, and the result is that of some serial order of the requests.
 */
public interface Image extends Closeable {

    /** The name of the resource this image was opened from (a file path or a {@code memory:} name). */
    String name();

    /** The format driver's name, e.g. {@code raw} or {@code qcow2}. */
    String format();

    /**
     * The virtual size in bytes, counted as QEMU counts it: a raw image whose file is not a multiple of 512
     * bytes long is that length rounded up to whole sectors (the rest of the last sector reads as zeroes), and
     * a qcow2 header size inside a sector is rounded down.
     */
    long size();

    /** Whether the image was opened read-only. */
    boolean readOnly();

    /**
     * Whether this image can do {@code feature} at all: one of the optional capabilities
     * ({@link Feature#CHECK}, {@link Feature#RESIZE}, {@link Feature#INTERNAL_SNAPSHOTS},
     * {@link Feature#COMPRESSED_WRITES}, {@link Feature#BACKING_FILE}, {@link Feature#VM_STATE}),
     * {@link Feature#RANDOM_WRITES} (writes anywhere, not only appended) or {@link Feature#OVERWRITES} (writes over
     * what was written, and over part of an allocation unit). A {@code true} still lets a request fail for a reason of its own (a size the
     * format cannot take, a snapshot that would overflow a count); a {@code false} means the matching request
     * throws an {@link UnsupportedFeatureException} with that feature.
     *
     * @implSpec The default supports none of them but random writes and overwrites.
     * @throws IllegalArgumentException if {@code feature} is none of those
     */
    default boolean supports(Feature feature) {
        return switch (feature) {
            case CHECK, RESIZE, INTERNAL_SNAPSHOTS, COMPRESSED_WRITES, BACKING_FILE, VM_STATE -> false;
            case RANDOM_WRITES, OVERWRITES -> true;
            default -> throw new IllegalArgumentException(feature + " is not a capability an image can be asked for");
        };
    }

    /**
     * Reads exactly {@code dst.remaining()} bytes starting at guest {@code offset}.
     *
     * @throws IllegalArgumentException if the range is outside the image
     * @throws IOException if the image or its storage cannot be read
     */
    void read(ByteBuffer dst, long offset) throws IOException;

    /**
     * Writes all of {@code src.remaining()} bytes at guest {@code offset}.
     *
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IllegalArgumentException if the range is outside the image
     * @throws IOException if the write fails; the image stays consistent
     */
    void write(ByteBuffer src, long offset) throws IOException;

    /**
     * Copies {@code length} guest bytes from {@code offset} of this image to {@code targetOffset} of {@code target}:
     * what {@link #read reading} them and {@linkplain #write writing} them to {@code target} does, bit for bit. Where
     * this image stores the bytes unchanged and {@code target} takes them unchanged, in storages that can copy
     * between each other (two local files), the operating system copies them without passing them through this
     * process's memory ({@code copy_file_range}); ranges that read as zero are copied as zeroes too.
     *
     * @implSpec The default reads and writes through a buffer of at most 2 MiB.
     * @throws ReadOnlyImageException if {@code target} is read-only
     * @throws IllegalArgumentException if a range is outside its image
     * @throws IOException if reading or writing fails
     */
    default void copyTo(long offset, long length, Image target, long targetOffset) throws IOException {
        if (length < 0 || offset < 0 || offset > size() - length) {
            throw new IllegalArgumentException(name() + ": copy of " + length + " bytes at " + offset
                    + " is outside the image");
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(length, 2 << 20));
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(buffer.capacity(), length - done);
            buffer.clear().limit(n);
            read(buffer, offset + done);
            target.write(buffer.flip(), targetOffset + done);
            done += n;
        }
    }

    /**
     * Writes one allocation unit (cluster) compressed, as {@code qemu-img convert -c} does:
     * {@code src.remaining()} bytes at guest {@code offset}, which must start a cluster and cover it
     * whole, or cover the image's last, partial cluster up to the end of the image. Data that does not
     * shrink is stored uncompressed. Formats without compression refuse. An empty {@code src} at offset 0 ends a
     * run of compressed writes as {@code qemu-img convert -c} ends it: the file's end is rounded up to whole 512-byte
     * sectors where the format does so (qcow2), else nothing happens.
     *
     * @implSpec The default refuses with an {@link UnsupportedFeatureException}.
     * @throws UnsupportedFeatureException if the format (or this image) cannot store compressed data
     * @throws IllegalArgumentException if the range is not one whole (or the last) cluster
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the cluster is already allocated (compressed data goes only to unallocated
     *         clusters, as in QEMU) or the write fails; the image stays consistent
     */
    default void writeCompressed(ByteBuffer src, long offset) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.COMPRESSED_WRITES, "the " + format()
                + " format cannot store compressed data");
    }

    /**
     * The first half of {@link #writeCompressed}: compresses the cluster now, in the calling thread, and returns the
     * write that stores it, so that callers can compress on several threads and store in the order they choose
     * (qemu-img convert {@code -c} stores in guest order, so that the layout does not depend on timing). A write that
     * is never made changes nothing; {@code src} must not change before it is made.
     *
     * @implSpec The default compresses nothing now: the write returned calls {@link #writeCompressed}, which then
     *           checks and throws as there.
     * @throws UnsupportedFeatureException if the format (or this image) cannot store compressed data
     * @throws IllegalArgumentException if the range is not one whole (or the last) cluster
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if compressing fails; storing fails only when the write is made
     */
    default PendingWrite compress(ByteBuffer src, long offset) throws IOException {
        return () -> writeCompressed(src, offset);
    }

    /**
     * Makes {@code [offset, offset + length)} read as zeroes, using the format's zero flags or the
     * storage's zero-range support where possible, and writing zeroes otherwise.
     *
     * @throws UnsupportedFeatureException if {@link ZeroFlag#NO_FALLBACK} is given and the range
     *         cannot be zeroed without writing zeroes
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the operation fails
     */
    void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException;

    /** Same as {@code writeZeroes(offset, length, Set.of())}. @throws IOException as there */
    default void writeZeroes(long offset, long length) throws IOException {
        writeZeroes(offset, length, Set.of());
    }

    /**
     * Tells the image that {@code [offset, offset + length)} is no longer needed. Formats free what
     * they can; what the range reads afterwards is format-specific (zeroes, or the backing image).
     *
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the operation fails
     */
    void discard(long offset, long length) throws IOException;

    /**
     * Writes cached metadata and makes everything written so far durable.
     *
     * @throws IOException if the flush fails
     */
    void flush() throws IOException;

    /**
     * Changes the virtual size to {@code newSize}, or to what the format makes of it (a raw image's file takes
     * exactly {@code newSize} bytes, and its {@link #size()} is that rounded up to whole 512-byte sectors, as in
     * QEMU).
     *
     * @throws UnsupportedFeatureException if the format cannot resize this way
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the resize fails
     */
    void resize(long newSize, Preallocation preallocation) throws IOException;

    /**
     * Drops everything the top layer stores, so that every read falls through to the backing chain
     * (what {@code qemu-img commit} does to the image it committed).
     *
     * @implSpec The default refuses.
     * @throws UnsupportedFeatureException if the format cannot do it
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if it fails
     */
    default void makeEmpty() throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.BACKING_FILE, "this image cannot be emptied");
    }

    /**
     * Changes the backing file the top layer names, copying nothing ({@code qemu-img rebase -u}). This
     * open image keeps reading through the chain it was opened with; the new reference is followed when
     * the image is opened again, so close it after the change.
     *
     * @param storedName the name to store (relative names resolve against the image's location), or
     *        {@code null} for no backing file
     * @param format the backing format to record, or {@code null} to record none
     * @implSpec The default refuses.
     * @throws UnsupportedFeatureException if the format cannot name a backing file
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if it fails
     */
    default void changeBackingFile(String storedName, String format) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.BACKING_FILE, "this image cannot name a backing file");
    }

    /**
     * Describes how the top layer stores the bytes starting at {@code offset}: the returned mapping
     * starts at {@code offset} and is at most {@code maxLength} bytes long.
     *
     * @throws IllegalArgumentException if {@code offset} is outside the image or {@code maxLength < 1}
     * @throws IOException if metadata cannot be read
     */
    Mapping mapping(long offset, long maxLength) throws IOException;

    /**
     * Resolves the bytes at {@code offset} through the backing chain, as {@code qemu-img map} does.
     *
     * @throws IllegalArgumentException if {@code offset} is outside the image or {@code maxLength < 1}
     * @throws IOException if metadata cannot be read
     */
    Extent extent(long offset, long maxLength) throws IOException;

    /**
     * All extents of {@code [offset, offset + length)}, in order, resolved through the chain. The list
     * is built in memory: for huge, fragmented images walk the range with {@link #extent} instead.
     *
     * @throws IOException if metadata cannot be read
     */
    default List<Extent> extents(long offset, long length) throws IOException {
        List<Extent> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            Extent e = extent(pos, end - pos);
            out.add(e);
            pos += e.length();
        }
        return out;
    }

    /**
     * The names of the top layer's persistent dirty bitmaps (qcow2's), in the order the image lists them.
     *
     * @implSpec The default has none.
     */
    default List<String> dirtyBitmaps() {
        return List.of();
    }

    /**
     * The run of guest bytes from {@code offset} that the top layer's persistent dirty bitmap {@code name} marks
     * alike (dirty or clean), at most {@code maxLength} bytes long: what an incremental backup reads, as QEMU
     * exports it in the NBD meta context {@code qemu:dirty-bitmap:NAME}. Writes through this image show at
     * once.
     *
     * @implSpec The default has no bitmaps.
     * @throws IllegalArgumentException if the image has no bitmap {@code name}, or the range is outside the image
     * @throws UnsupportedFeatureException ({@link Feature#PERSISTENT_BITMAPS}) if the bitmap is inconsistent
     * @throws IOException if the bitmap cannot be read
     */
    default DirtyRun dirtyRun(String name, long offset, long maxLength) throws IOException {
        throw new IllegalArgumentException("Bitmap '" + name + "' is not found");
    }

    /**
     * The persistent dirty bitmaps of the top layer, to list, change and read (see {@link Bitmaps}).
     *
     * @implSpec The default has none and can store none.
     */
    default Bitmaps bitmaps() {
        return new NoBitmaps(name(), size());
    }

    /**
     * The VM state area of the top layer (see {@link VmState}): qcow2 has one, the other formats none.
     *
     * @implSpec The default has none: its requests throw an {@link UnsupportedFeatureException} of
     *           {@link Feature#VM_STATE}.
     */
    default VmState vmState() {
        return VmState.none(name(), format());
    }

    /** The backing image, if this image has one. */
    Optional<Image> backing();

    /**
     * What {@code qemu-img info} shows about this layer.
     *
     * @throws IOException if the storage cannot be queried
     */
    ImageInfo info() throws IOException;

    /**
     * Creates an internal snapshot of the top layer named {@code name} (names need not be unique) and returns it.
     *
     * @implSpec The default refuses.
     * @throws ReadOnlyImageException if the image is read-only
     * @throws UnsupportedFeatureException if the format cannot take internal snapshots
     * @throws IOException if the snapshot cannot be written
     */
    default SnapshotInfo createSnapshot(String name) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.INTERNAL_SNAPSHOTS, "this image has no internal snapshots");
    }

    /**
     * Deletes the top layer's internal snapshot with id {@code idOrName} or, if none has that id, the first one with
     * that name.
     *
     * @implSpec The default refuses.
     * @throws NoSuchSnapshotException if no snapshot has that id or name
     * @throws ReadOnlyImageException if the image is read-only
     * @throws UnsupportedFeatureException if the format has no internal snapshots
     * @throws IOException if the deletion fails
     */
    default void deleteSnapshot(String idOrName) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.INTERNAL_SNAPSHOTS, "this image has no internal snapshots");
    }

    /**
     * Reverts the top layer to its internal snapshot with id {@code idOrName} or, if none has that id, the first one
     * with that name. The {@link #size() size} becomes the snapshot's.
     *
     * @implSpec The default refuses.
     * @throws NoSuchSnapshotException if no snapshot has that id or name
     * @throws ReadOnlyImageException if the image is read-only
     * @throws UnsupportedFeatureException if the format has no internal snapshots
     * @throws IOException if reverting fails
     */
    default void applySnapshot(String idOrName) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.INTERNAL_SNAPSHOTS, "this image has no internal snapshots");
    }

    /**
     * Checks the top layer's metadata as {@code qemu-img check} does and repairs what {@code repair}
     * allows (then checks again). Other requests wait meanwhile. Open the image with the probe module's
     * {@code Opener.forCheck} so that damage is reported here rather than refused at open.
     *
     * @implSpec The default refuses, as for a format without checks.
     * @throws UnsupportedFeatureException if the format has no checks ({@code feature()} is {@code "check"})
     * @throws ReadOnlyImageException if {@code repair} is not {@link Repair#NONE} and the image is read-only
     * @throws IOException if the storage fails; damage is reported, not thrown
     */
    default CheckReport check(Repair repair) throws IOException {
        throw new UnsupportedFeatureException(name(), Feature.CHECK, "This image format does not support checks");
    }

    /**
     * Flushes (if writable) and closes this image, its storage and every image it opened implicitly.
     *
     * @throws IOException if the final flush or a close fails
     */
    @Override
    void close() throws IOException;
}
