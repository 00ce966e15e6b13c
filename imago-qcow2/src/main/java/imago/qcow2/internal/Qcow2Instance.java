package imago.qcow2.internal;

import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.SnapshotInfo;
import imago.api.ZeroFlag;
import imago.api.spi.Amender;
import imago.api.spi.BackingFacts;
import imago.api.spi.BackingReader;
import imago.api.spi.BackingRewriter;
import imago.api.spi.BitmapEditor;
import imago.api.spi.Capability;
import imago.api.spi.Checker;
import imago.api.spi.CompressedWriter;
import imago.api.spi.Dependency;
import imago.api.spi.DirtyBitmaps;
import imago.api.spi.FormatInstance;
import imago.api.spi.InternalSnapshots;
import imago.api.spi.OpenContext;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.VmStateArea;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * One open qcow2 layer: a facade over the rooms that share its {@link Qcow2State} (see the package documentation
 * for the map). It wires them once, hands each request to the room that owns it, and hands the optional
 * capabilities out: {@link Resizer} ({@link Qcow2Resize}), {@link InternalSnapshots} ({@link Qcow2Snapshots}),
 * {@link Checker} ({@link Qcow2Checker}), {@link BackingRewriter} ({@link Qcow2BackingRewriter}) and
 * {@link CompressedWriter} ({@link Qcow2CompressedWrites}), {@link VmStateArea} ({@link Qcow2VmState}) and, when the image has persistent bitmaps,
 * {@link DirtyBitmaps} ({@link Qcow2DirtyBitmaps}).
 */
final class Qcow2Instance implements FormatInstance {
    private final Qcow2State st;
    private final Qcow2Tables tables;
    private final Qcow2Mapping mapping;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2WriteBack writeBack;
    private final Qcow2AllocatingWrites writes;
    private final Qcow2Zeroing zeroing;
    private final Qcow2Preallocation preallocation;
    private final Qcow2Info info;
    private final Qcow2Resize resizer;
    private final Qcow2Snapshots snapshots;
    private final Qcow2Checker checker;
    private final Qcow2BackingRewriter backingRewriter;
    private final Qcow2CompressedWrites compressedWrites;
    private final Qcow2DirtyBitmaps dirtyBitmaps;
    private final Qcow2BitmapEditor bitmapEditor;
    private final Qcow2Amend amend;
    private final Qcow2VmState vmState;

    private Qcow2Instance(Qcow2State st, int cacheTables) throws IOException {
        this.st = st;
        Qcow2Claims claims = new Qcow2Claims();
        this.tables = new Qcow2Tables(st, cacheTables);
        this.mapping = new Qcow2Mapping(st, tables);
        this.compressedReads = new Qcow2CompressedReads(st, mapping);
        this.writeBack = new Qcow2WriteBack(st, tables, claims, compressedReads);
        Qcow2Guard guard = new Qcow2Guard(st);
        Qcow2CopyOnWrite cow = new Qcow2CopyOnWrite(st, writeBack);
        this.writes = new Qcow2AllocatingWrites(st, tables, claims, mapping, guard, cow, compressedReads,
                new Qcow2SubclusterWrites(st, tables, claims, mapping, guard, cow, compressedReads));
        this.zeroing = new Qcow2Zeroing(st, tables, claims, mapping, writes);
        this.preallocation = new Qcow2Preallocation(st, tables, claims, cow);
        this.info = new Qcow2Info(st);
        this.resizer = new Qcow2Resize(st, tables, claims, mapping, compressedReads, cow, writeBack, zeroing,
                preallocation);
        this.snapshots = new Qcow2Snapshots(st, tables, claims, mapping, writeBack, compressedReads);
        this.checker = new Qcow2Checker(st, tables, claims, writeBack, compressedReads);
        this.backingRewriter = new Qcow2BackingRewriter(st, claims, writeBack, zeroing);
        this.compressedWrites = new Qcow2CompressedWrites(st, tables, claims, mapping, compressedReads);
        this.vmState = new Qcow2VmState(st, claims, mapping, compressedReads, writes);
        this.bitmapEditor = st.refcounts != null ? new Qcow2BitmapEditor(st) : null;
        this.amend = st.refcounts != null ? new Qcow2Amend(st, tables, claims, writeBack) : null;
        this.dirtyBitmaps = st.bitmaps.isEmpty() && st.tracker == null ? null : new Qcow2DirtyBitmaps(st.storage,
                Integer.numberOfTrailingZeros(st.header.clusterSize()), st.fileSize, () -> st.size, st.bitmaps,
                st.tracker);
        if (st.refcounts != null) {
            guard.verifyMetadataCounted();
        }
    }

    /** Opens {@code storage} ({@link Qcow2Opening}); a writable layer's metadata must be counted. */
    static Qcow2Instance open(Storage storage, OpenContext context) throws IOException {
        Qcow2Opening.Opened opened = Qcow2Opening.open(storage, context);
        return new Qcow2Instance(opened.state(), opened.cacheTables());
    }

    @Override
    public long size() {
        return st.size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        return mapping.mapping(offset, maxLength);
    }

    @Override
    public void readSpecial(Mapping.Special special, ByteBuffer dst, long offset) throws IOException {
        if (special.kind().equals(Qcow2Mapping.ENCRYPTED)) {
            readEncrypted(dst, offset);
        } else {
            compressedReads.readSpecial(special, dst, offset);
        }
    }

    /** Decrypts the data clusters under {@code [offset, offset + dst.remaining())}, cluster by cluster. */
    private void readEncrypted(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            Qcow2Mapping.Unit u = mapping.unit(pos);
            int n = (int) Math.min(dst.remaining(), u.end() - pos);
            ByteBuffer part = dst.slice(dst.position(), n);
            if (u.kind() == Qcow2Mapping.Kind.DATA) {
                st.readData(part, u.host());
            } else if (u.kind() != Qcow2Mapping.Kind.ZERO_PLAIN && u.kind() != Qcow2Mapping.Kind.ZERO_ALLOC) {
                // only a concurrent discard changes data into anything else
                throw new imago.api.ImageException(st.resource, "the encrypted data at guest offset " + pos
                        + " changed while it was read");
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    /**
     * {@inheritDoc} The persistent bitmaps that record writes are marked in use first, and get the bits
     * of the ticket's mapping before the data is written.
     */
    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        return writes.beginWrite(offset, length, below);
    }

    /**
     * {@inheritDoc} Without the backing chain, only this layer's own zero clusters count as zero around a
     * partial cluster.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        return zeroing.ensureZeroMapping(offset, length, mayUnmap);
    }

    /**
     * {@inheritDoc} As QEMU 7.2 (qcow2_co_pwrite_zeroes, qcow2_subcluster_zeroize): whole zero units (clusters,
     * or subclusters with extended L2 entries) become zero with metadata alone, and part of one only when the
     * rest of it reads as zero already, the whole unit then becoming zero. qcow2 v2 has no zero flag: without a
     * backing file it discards instead, with one the caller writes zeroes; and as QEMU supports no zero-write
     * flags on v2, {@link ZeroFlag#NO_FALLBACK} fails there. The persistent bitmaps that record writes get the
     * bits of what was handled. See {@link Qcow2Zeroing}.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        return zeroing.ensureZeroMapping(offset, length, flags, below);
    }

    /** {@inheritDoc} The persistent bitmaps that record writes get the whole range, as in QEMU. */
    @Override
    public void discard(long offset, long length) throws IOException {
        zeroing.discard(offset, length);
    }

    /** With extended L2 entries, zero writes work on whole subclusters. */
    @Override
    public OptionalInt zeroAlignment() {
        return OptionalInt.of(1 << st.geometry.unitBits());
    }

    @Override
    public void flush() throws IOException {
        writeBack.flush();
    }

    @Override
    public void sync() throws IOException {
        writeBack.sync();
    }

    @Override
    public void checkBacking(BackingFacts backing) {
        st.backingSize = backing.size();
    }

    @Override
    public List<Dependency> dependencies() {
        return info.dependencies();
    }

    @Override
    public void attach(Dependency dependency, Storage data) throws IOException {
        Objects.requireNonNull(data, "data");
        if (!(dependency instanceof Dependency.DataFile) || !st.header.hasDataFile()) {
            throw new UnsupportedOperationException(st.resource + ": this image names no data file");
        }
        st.dataFile = data;
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of(st.geometry.clusterSize());
    }

    /** {@inheritDoc} See {@link Qcow2Info#mapsStorageHoles}. */
    @Override
    public boolean mapsStorageHoles() {
        return info.mapsStorageHoles();
    }

    @Override
    public boolean dirty() {
        return st.header.dirty();
    }

    @Override
    public Map<String, Object> formatSpecific() {
        return info.formatSpecific();
    }

    /** {@inheritDoc} Each capability is the room that implements it. */
    @Override
    public <C extends Capability> Optional<C> capability(Class<C> type) {
        Capability room = type == Resizer.class ? resizer
                : type == InternalSnapshots.class ? snapshots
                : type == Checker.class ? checker
                : type == BackingRewriter.class ? backingRewriter
                : type == CompressedWriter.class ? compressedWrites
                : type == DirtyBitmaps.class ? dirtyBitmaps
                : type == BitmapEditor.class ? bitmapEditor
                : type == Amender.class ? amend
                : type == VmStateArea.class ? vmState
                : null;
        return room != null ? Optional.of(type.cast(room)) : FormatInstance.super.capability(type);
    }

    /** Preallocates guest bytes {@code [from, to)} (creation: {@link Qcow2Create}); see {@link Qcow2Preallocation}. */
    void preallocate(long from, long to, Preallocation mode) throws IOException {
        preallocation.preallocate(from, to, mode);
    }

    /** Resizes without the backing chain (see {@link Qcow2Resize#resize(long, Preallocation)}). */
    void resize(long newSize, Preallocation mode) throws IOException {
        resizer.resize(newSize, mode);
    }

    /** The internal snapshots, oldest first. */
    List<SnapshotInfo> snapshots() {
        return snapshots.list();
    }

    /** The parsed header (for tests). */
    Qcow2Header header() {
        return st.header;
    }

    /** How many clusters were decompressed (for tests). */
    long decompressions() {
        return compressedReads.decompressions();
    }

    /** The L2 cache (for tests). */
    Qcow2L2Cache cache() {
        return tables.cache();
    }

    /**
     * {@inheritDoc} The persistent bitmaps marked in use while the image was written are stored (see
     * {@link Qcow2BitmapTracker}); then a writable image that lazy refcounts left dirty is marked clean (as
     * QEMU's qcow2_inactivate), unless writing fails: then the dirty bit stays for the next writable open to
     * repair.
     */
    @Override
    public void close() throws IOException {
        try {
            writeBack.close();
        } finally {
            Qcow2Crypto c = st.crypto;
            if (c != null) {
                c.close();
            }
        }
    }

    @Override
    public String toString() {
        return "Qcow2Instance[" + st.resource + ", v" + st.header.version() + ", size " + st.size + ", cluster "
                + st.geometry.clusterSize() + "]";
    }
}
