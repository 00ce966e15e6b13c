package imago.api.spi;

import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * One open layer of one format. It describes guest bytes as {@link Mapping}s and changes them on
 * request; {@link LayeredImage} does the data I/O. Implementations are thread-safe.
 */
public interface FormatInstance extends Closeable {

    /** The virtual size in bytes. */
    long size();

    /**
     * How the bytes from {@code offset} are stored: a mapping that starts at {@code offset} and is
     * between 1 and {@code maxLength} bytes long ({@link Mapping.EndOfImage} at or past the end).
     *
     * @throws IOException if metadata cannot be read or is corrupt
     */
    Mapping mapping(long offset, long maxLength) throws IOException;

    /**
     * The mapping the read path follows from {@code offset}, under the same contract as
     * {@link #mapping}. A driver may answer more coarsely than {@code mapping} where that reads the same
     * bytes for less work: raw maps holes as data here, since a hole reads as zeroes anyway and asking
     * the file system where its holes are costs two system calls per read.
     *
     * @implSpec The default is {@link #mapping}.
     * @throws IOException if metadata cannot be read or is corrupt
     */
    default Mapping readMapping(long offset, long maxLength) throws IOException {
        return mapping(offset, maxLength);
    }

    /**
     * Makes the bytes from {@code offset} writable in place and returns a {@link Mapping.Data} starting
     * at {@code offset}, at most {@code length} bytes long. Allocation and copy-on-write of the parts
     * of an allocation unit outside {@code [offset, offset + length)} happen here, reading what lies
     * below through {@code below}.
     *
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws IOException if allocation fails; the layer stays consistent
     */
    Mapping.Data ensureDataMapping(long offset, long length, BackingReader below) throws IOException;

    /**
     * Told after the data for a mapping from {@link #ensureDataMapping} was written ({@code failure}
     * is {@code null}) or failed to be written, so that a driver can commit or roll back metadata that
     * must not point at unwritten data.
     *
     * @implSpec The default does nothing: the mapping was final when it was returned.
     * @throws IOException if committing fails
     */
    default void completeWrite(Mapping.Data mapping, IOException failure) throws IOException {
    }

    /**
     * Stores one cluster compressed at guest {@code offset} (cluster aligned): {@code cluster} holds the
     * whole cluster, or for the last cluster of an image whose size is not a multiple of the cluster size,
     * the bytes up to the end of the image (the driver pads them with zeroes). Returns {@code false},
     * changing nothing, when the data does not shrink: the caller then writes it the ordinary way.
     * The buffer's position is left unchanged.
     *
     * @implSpec The default refuses with an {@link UnsupportedFeatureException}.
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws IOException if the cluster is already allocated, or the write fails; the layer stays
     *         consistent
     */
    default boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException {
        throw new UnsupportedFeatureException("image", "compressed writes", "this format cannot store compressed "
                + "data");
    }

    /**
     * Makes bytes from {@code offset} read as zero using format metadata alone, and returns how many
     * (from {@code offset} on) it handled; 0 means the caller must write zeroes up to the next
     * {@link #clusterSize() allocation unit} boundary (typically a partial unit) and then ask again.
     *
     * @implSpec The default handles nothing.
     * @throws IOException if the operation fails
     */
    default long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        return 0;
    }

    /**
     * Frees what backs {@code [offset, offset + length)} where the format can.
     *
     * @implSpec The default does nothing, which keeps the data: a valid discard.
     * @throws IOException if the operation fails
     */
    default void discard(long offset, long length) throws IOException {
    }

    /**
     * Decodes the guest bytes of a {@link Mapping.Special} mapping into {@code dst}, from guest
     * {@code offset} (inside {@code mapping}) for {@code dst.remaining()} bytes.
     *
     * @implSpec The default refuses: only drivers that return special mappings decode them.
     * @throws IOException if the bytes cannot be decoded
     */
    default void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        throw new UnsupportedOperationException("this driver returns no special mappings");
    }

    /**
     * Writes cached metadata to the storage, in dependency order.
     *
     * @throws IOException if a write fails
     */
    void flush() throws IOException;

    /**
     * Makes everything flushed durable.
     *
     * @throws IOException if the sync fails
     */
    void sync() throws IOException;

    /**
     * Changes the virtual size.
     *
     * @implSpec The default refuses.
     * @throws IOException if the resize fails
     */
    default void resize(long newSize, Preallocation preallocation) throws IOException {
        throw new UnsupportedFeatureException("image", "resize", "this format cannot be resized");
    }

    /**
     * Changes the virtual size of a layer whose backing chain reads through {@code below}: a layer that
     * grows while its backing image is longer than its old size must make the new area read as zero
     * rather than show the backing image (QEMU's bdrv_co_truncate), copying from {@code below} where it
     * allocates a partial cluster.
     *
     * @implSpec The default calls {@link #resize(long, Preallocation)}.
     * @throws IOException if the resize fails
     */
    default void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        resize(newSize, preallocation);
    }

    /**
     * Drops every allocation of this layer, so that all reads fall through to the backing file.
     *
     * @implSpec The default refuses.
     * @throws IOException if it fails
     */
    default void makeEmpty() throws IOException {
        throw new UnsupportedFeatureException("image", "make empty", "this format cannot empty an image");
    }

    /**
     * Records {@code file} (or no backing file when {@code null}) with {@code format} (none when
     * {@code null}) as this layer's backing file, durably, changing no data.
     *
     * @implSpec The default refuses.
     * @throws IOException if it fails
     */
    default void changeBackingFile(String file, String format) throws IOException {
        throw new UnsupportedFeatureException("image", "backing file", "this format cannot name a backing file");
    }

    /**
     * The files this layer names. The probe module opens them through the {@link OpenGate}.
     *
     * @implSpec The default names none.
     */
    default List<Dependency> dependencies() {
        return List.of();
    }

    /**
     * Told about the backing image opened for this layer's {@link Dependency.BackingFile}: its virtual
     * size and when its storage was last modified, for formats that record and check them (UML's cow
     * compares both with its header).
     *
     * @implSpec The default checks nothing.
     * @throws IOException to refuse the backing image (e.g. a {@link imago.api.CorruptImageException})
     */
    default void checkBacking(long backingSize, java.util.Optional<java.time.Instant> backingModified)
            throws IOException {
    }

    /**
     * Receives the storage of the {@link Dependency.DataFile} this layer named.
     *
     * @implSpec The default refuses, as a driver that names no data file never receives one.
     * @throws IOException if the data file does not fit the image
     */
    default void attachDataFile(Storage dataFile) throws IOException {
        throw new UnsupportedOperationException("this driver names no data file");
    }

    /**
     * The allocation unit, for formats that have one.
     *
     * @implSpec The default has none.
     */
    default OptionalInt clusterSize() {
        return OptionalInt.empty();
    }

    /**
     * The granularity of {@link #ensureZeroMapping}: when it handles nothing, the caller writes zeroes up to
     * the next multiple of this and asks again (QEMU's {@code pwrite_zeroes_alignment}).
     *
     * @implSpec The default is the {@link #clusterSize() allocation unit}.
     */
    default OptionalInt zeroAlignment() {
        return clusterSize();
    }

    /**
     * Whether {@link imago.api.Image#extent extents} of this layer's data mappings should also say where
     * the storage has holes (data that reads as zero), cutting extents at the storage's data/hole
     * boundaries. QEMU does this (BDRV_BLOCK_RECURSE) for qcow2 images whose metadata was preallocated,
     * where clusters are mapped but never written; for other images it would only split extents.
     *
     * @implSpec The default says no.
     */
    default boolean mapsStorageHoles() {
        return false;
    }

    /**
     * Whether the layer is marked dirty.
     *
     * @implSpec The default says no.
     */
    default boolean dirty() {
        return false;
    }

    /**
     * Format-specific fields for {@code info}, with qemu-img's JSON names and types
     * ({@link String}, {@link Number}, {@link Boolean}, lists and maps of these): the contents of
     * qemu's {@code format-specific.data}; the caller adds the {@code type} (the driver name).
     *
     * @implSpec The default has none.
     */
    default Map<String, Object> formatSpecific() {
        return Map.of();
    }

    /**
     * The layer's internal snapshots, oldest first.
     *
     * @implSpec The default has none.
     */
    default java.util.List<imago.api.SnapshotInfo> snapshots() {
        return List.of();
    }

    /**
     * Creates an internal snapshot of the layer's current state named {@code name}, with the next free
     * numeric id (QEMU's rule), and returns it. Names need not be unique (as in QEMU).
     *
     * @implSpec The default refuses: the format has no internal snapshots.
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws UnsupportedFeatureException if the format or this image cannot take snapshots
     * @throws IOException if the snapshot cannot be written; the layer stays consistent
     */
    default imago.api.SnapshotInfo createSnapshot(String name) throws IOException {
        throw new UnsupportedFeatureException("image", "internal snapshots", "this format has no internal snapshots");
    }

    /**
     * Deletes the internal snapshot whose id is {@code idOrName} or, if none has that id, the first one with that
     * name, freeing what only it used.
     *
     * @implSpec The default refuses: the format has no internal snapshots.
     * @throws imago.api.NoSuchSnapshotException if no snapshot has that id or name
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws UnsupportedFeatureException if the format has no internal snapshots
     * @throws IOException if the deletion fails; the layer stays consistent
     */
    default void deleteSnapshot(String idOrName) throws IOException {
        throw new UnsupportedFeatureException("image", "internal snapshots", "this format has no internal snapshots");
    }

    /**
     * Reverts the layer to the internal snapshot whose id is {@code idOrName} or, if none has that id, the first one
     * with that name; the snapshot stays. The {@link #size() size} becomes the snapshot's.
     *
     * @implSpec The default refuses: the format has no internal snapshots.
     * @throws imago.api.NoSuchSnapshotException if no snapshot has that id or name
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws UnsupportedFeatureException if the format has no internal snapshots
     * @throws IOException if reverting fails; the layer stays consistent
     */
    default void applySnapshot(String idOrName) throws IOException {
        throw new UnsupportedFeatureException("image", "internal snapshots", "this format has no internal snapshots");
    }

    /**
     * Checks the layer's metadata as {@code qemu-img check} does and, if {@code repair} allows, repairs
     * it; after a repair the report is that of a second check, with the fixed counts of the first.
     * Called with no other request in flight. A layer opened with {@link OpenContext#forCheck()} must
     * not have failed to open on the damage this reports.
     *
     * @implSpec The default refuses: the format has no checks (qemu-img's exit status 63).
     * @throws UnsupportedFeatureException if the format cannot be checked
     * @throws imago.api.ReadOnlyImageException if {@code repair} is not {@link imago.api.Repair#NONE} and
     *         the layer is read-only
     * @throws IOException if the storage fails; damage is reported, not thrown
     */
    default imago.api.CheckReport check(imago.api.Repair repair) throws IOException {
        throw new UnsupportedFeatureException("image", "check", "This image format does not support checks");
    }

    /**
     * Releases in-memory state. The caller has already flushed and synced; a writable layer may then
     * write what a format keeps until a clean close (QEMU's "inactivate": qcow2 stores its persistent
     * bitmaps and clears the lazy-refcounts dirty bit) and sync it. Storages are closed by the caller.
     *
     * @throws IOException if releasing fails
     */
    @Override
    void close() throws IOException;
}
