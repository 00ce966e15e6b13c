package imago.api.spi;

import imago.api.Mapping;
import imago.api.ZeroFlag;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;

/**
 * One open layer of one format. It describes guest bytes as {@link Mapping}s and changes them on
 * request; {@link LayeredImage} does the data I/O. Implementations are thread-safe.
 *
 * <p>The core every layer has: its size, mappings, the write path ({@link #beginWrite}, zeroes, discard), flush
 * and sync, the files it names, what {@code info} shows, and close. What only some formats can do is an
 * optional {@link Capability} handed out by {@link #capability(Class)}: {@link Resizer}, {@link InternalSnapshots},
 * {@link Checker}, {@link BackingRewriter}, {@link CompressedWriter}.
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
     * Begins a write of the bytes from {@code offset}: makes them writable in place and returns a ticket whose
     * {@link WriteTicket#mapping() mapping} starts at {@code offset} and is at most {@code length} bytes long.
     * Allocation and copy-on-write of the parts of an allocation unit outside {@code [offset, offset + length)}
     * happen here, reading what lies below through {@code below}; metadata that points at the new bytes changes
     * only when the ticket is {@linkplain WriteTicket#commit() committed}. The caller uses the ticket on this
     * thread, in try-with-resources.
     *
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws imago.api.UnsupportedFeatureException if the format cannot write there now (an append-only
     *         format asked to write behind its end: {@link imago.api.Feature#RANDOM_WRITES}; a write-once one asked to
     *         write again, or part of a unit: {@link imago.api.Feature#OVERWRITES})
     * @throws IOException if allocation fails; the layer stays consistent
     */
    WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException;

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
     * {@link #ensureZeroMapping(long, long, boolean)} with the request's flags and a view of what lies below
     * the layer, which the generic zero path calls. A layer may then also handle a zero write over part of a
     * {@link #zeroAlignment() zero unit} whose other bytes already read as zero (its own metadata says so, or
     * they fall through to {@code below} and {@link BackingReader#readsAsZero below reads as zero} there) by
     * making the whole unit read as zero, as QEMU's qcow2 does. A layer that cannot honour
     * {@link ZeroFlag#NO_FALLBACK} at all returns 0 when it is set, so that the request fails as in QEMU.
     *
     * @implSpec The default ignores {@code below} and calls {@code ensureZeroMapping(offset, length,
     *           flags.contains(ZeroFlag.MAY_UNMAP))}.
     * @throws IOException if the operation fails
     */
    default long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        return ensureZeroMapping(offset, length, flags.contains(ZeroFlag.MAY_UNMAP));
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
     * The files this layer names. The probe module opens them through the {@link imago.api.OpenGate}: a backing
     * file as the image below, a data file or an extent file as storage handed to {@link #attach}.
     *
     * @implSpec The default names none.
     */
    default List<Dependency> dependencies() {
        return List.of();
    }

    /**
     * Receives the storage opened for one of this layer's {@link Dependency.DataFile data} or
     * {@link Dependency.ExtentFile extent} files, in the order {@link #dependencies()} named them.
     *
     * @implSpec The default refuses, as a driver that names no such file never receives one.
     * @throws IOException if the file does not fit the image
     */
    default void attach(Dependency dependency, Storage storage) throws IOException {
        throw new UnsupportedOperationException("this driver names no data or extent files, but got " + dependency);
    }

    /**
     * The optional capability {@code type} of this layer ({@link Resizer}, {@link InternalSnapshots},
     * {@link Checker}, {@link BackingRewriter}, {@link CompressedWriter}, or a driver's own), if it has it.
     *
     * @implSpec The default returns this layer when it implements {@code type}; a layer overrides it to hand
     *           out a separate object, or to withhold a capability this particular image lacks.
     */
    default <C extends Capability> Optional<C> capability(Class<C> type) {
        return type.isInstance(this) ? Optional.of(type.cast(this)) : Optional.empty();
    }

    /**
     * Whether writes may go anywhere ({@code true}) or only append ({@link #beginWrite} refuses a write behind what
     * was written, and {@code convert} writes such images in one pass, in order).
     *
     * @implSpec The default allows random writes.
     */
    default boolean randomWrites() {
        return true;
    }

    /**
     * Whether writes may go over what was written and over part of an allocation unit ({@code true}), or each unit
     * is written once, whole (VMDK streamOptimized: {@link #beginWrite} refuses the others with
     * {@link imago.api.Feature#OVERWRITES}, and {@code convert} writes such images compressed, as qemu-img's
     * {@code needs_compressed_writes}).
     *
     * @implSpec The default allows overwrites.
     */
    default boolean overwrites() {
        return true;
    }

    /**
     * Told about the backing image opened for this layer's {@link Dependency.BackingFile}, for formats that record
     * something of their parent and check it (UML's cow compares size and mtime with its header, VMDK the parent's
     * CID with its {@code parentCID}).
     *
     * @implSpec The default checks nothing.
     * @throws IOException to refuse the backing image (e.g. a {@link imago.api.CorruptImageException})
     */
    default void checkBacking(BackingFacts backing) throws IOException {
    }

    /**
     * Bytes the layer's files occupy on their media ({@code qemu-img info}'s "actual-size"), when the layer is kept
     * in more files than its own storage and counts them all (QEMU's vmdk sums its extent files).
     *
     * @implSpec The default does not know: the caller asks the layer's own storage.
     * @throws IOException if a storage cannot be queried
     */
    default OptionalLong allocatedSize() throws IOException {
        return OptionalLong.empty();
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
     * Whether {@link imago.api.Image#extent extents} of this layer say what its mappings say (data and where it is
     * stored, zeroes), as QEMU's drivers report block status. Where QEMU's driver for the format reports none (dmg),
     * {@code qemu-img map} shows every byte as data without a host offset; a layer that says no here is shown so too.
     * Reads still go by the mappings.
     *
     * @implSpec The default says yes.
     */
    default boolean reportsBlockStatus() {
        return true;
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
     * Releases in-memory state. The caller has already flushed and synced; a writable layer may then
     * write what a format keeps until a clean close (QEMU's "inactivate": qcow2 stores its persistent
     * bitmaps and clears the lazy-refcounts dirty bit) and sync it. Storages are closed by the caller.
     *
     * @throws IOException if releasing fails
     */
    @Override
    void close() throws IOException;
}
