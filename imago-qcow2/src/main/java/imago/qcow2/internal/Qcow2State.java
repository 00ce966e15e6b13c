package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The open layer's shared picture, which every room of {@link Qcow2Instance} reads: the header, the sizes, the
 * active L1 table, the snapshot table, the attached data file and, for a writable open, the refcounts. The
 * fields that change are volatile so that lock-free readers see a consistent snapshot of each; they change under
 * the allocation lock ({@link Qcow2Claims}), the virtual size and the L1 table only while every request is
 * excluded (resize, snapshot apply, repair) or, for L1 entries, by the one allocating thread; a write into the VM
 * state area also replaces the L1 table with a longer copy of it, under the allocation lock with no write in flight.
 */
final class Qcow2State {
    final Storage storage;
    final String resource;
    final Qcow2Geometry geometry;
    /** Replaced (under the allocation lock) when a repair or a change of the backing file rewrites it. */
    volatile Qcow2Header header;
    /** The file size: grows as clusters are allocated. */
    volatile long fileSize;
    /** The virtual size: changes only by a resize, which excludes every other request. */
    volatile long size;
    /** The active L1 table; a resize or a VM state write replaces it with a longer copy ({@link Qcow2L1Growth}). */
    volatile long[] l1;
    /** Where the active L1 table is: a resize may move it. */
    volatile long l1Offset;
    /** The snapshot table: replaced (copy and switch) by creating and deleting snapshots. */
    volatile List<Qcow2Snapshot> snapshots;
    /** Where the snapshot table is (0 without snapshots). */
    volatile long snapshotsOffset;
    /** The persistent bitmaps, as listed when the image was opened. */
    final List<Qcow2Bitmaps.Bitmap> bitmaps;
    /** Keeps the persistent bitmaps true while the image is written (null: read-only, or no bitmaps). */
    final Qcow2BitmapTracker tracker;
    /** Why the image was marked corrupt by this instance (no more writes then); null while it is not. */
    volatile String corrupted;
    volatile Storage dataFile;
    /** The virtual size of the backing image opened for this layer, or -1. */
    volatile long backingSize = -1;
    /** The LUKS encryption of an encrypted image (crypt_method 2), set once by the open; null when not encrypted. */
    volatile Qcow2Crypto crypto;
    /** Refcounts and allocator of a writable image; null when read-only. */
    volatile Qcow2Refcounts refcounts;
    /**
     * The {@code lazy-refcounts} open option (QEMU's), which wins over the header's bit while this instance has the
     * image open; null when not given, or once an amend has set the bit (as QEMU's amend sets its use).
     */
    volatile Boolean lazyOption;

    Qcow2State(Storage storage, Qcow2Header header, long fileSize, long size, long[] l1, long l1Offset,
            List<Qcow2Snapshot> snapshots, List<Qcow2Bitmaps.Bitmap> bitmaps, Qcow2BitmapTracker tracker,
            Qcow2Refcounts refcounts) {
        this.storage = storage;
        this.resource = storage.name();
        this.geometry = Qcow2Geometry.of(header);
        this.header = header;
        this.fileSize = fileSize;
        this.size = size;
        this.l1 = l1;
        this.l1Offset = l1Offset;
        this.snapshots = List.copyOf(snapshots);
        this.snapshotsOffset = snapshots.isEmpty() ? 0 : header.snapshotsOffset();
        this.bitmaps = bitmaps;
        this.tracker = tracker;
        this.refcounts = refcounts;
    }

    /** The storage guest data lives in: the external data file or the image itself. */
    Storage dataStorage() throws ImageException {
        if (!header.hasDataFile()) {
            return storage;
        }
        Storage d = dataFile;
        if (d == null) {
            throw new ImageException(resource, "the external data file '" + header.dataFile().orElse("")
                    + "' is not attached");
        }
        return d;
    }

    /**
     * Reads guest bytes stored at {@code host} of the data storage, decrypting them in an encrypted image (then
     * {@code host} and the length need not be sector-aligned).
     */
    void readData(ByteBuffer dst, long host) throws IOException {
        Qcow2Crypto c = crypto;
        if (c != null) {
            c.read(dataStorage(), dst, host);
        } else {
            dataStorage().read(dst, host);
        }
    }

    /**
     * Writes guest bytes at {@code host} of the data storage, encrypting them in an encrypted image (then
     * {@code host} and the length are whole sectors).
     */
    void writeData(ByteBuffer src, long host) throws IOException {
        Qcow2Crypto c = crypto;
        if (c != null) {
            c.write(dataStorage(), src, host);
        } else {
            dataStorage().write(src, host);
        }
    }

    /**
     * Makes an external data file read zero where a cluster became a zero cluster: a raw data file must
     * show the guest's bytes (QEMU zeroes it too); otherwise the space is only given back.
     */
    void clearDataFile(long host) throws IOException {
        int clusterSize = geometry.clusterSize();
        if (header.dataFileRaw()) {
            dataStorage().writeZeroes(host, clusterSize, true);
        } else {
            dataStorage().discard(host, clusterSize);
        }
    }

    /** Whether the header names a backing file (an empty name is none). */
    boolean hasBacking() {
        return header.backingFile().filter(n -> !n.isEmpty()).isPresent();
    }

    /**
     * Refuses, before anything changes, an allocation of {@code clusters} clusters that would need the refcount
     * table to grow past QEMU's limit.
     */
    void requireRoom(int clusters) throws IOException {
        if (!refcounts.canAllocate(clusters)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                    "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
        }
    }

    /**
     * The end of the address range guest offset {@code offset} lies in: the virtual size for the guest disk, and
     * none ({@link Long#MAX_VALUE}) for the VM state area past it ({@link Qcow2VmState}), which starts at an L2
     * table's span at or past the virtual size, so that no cluster holds bytes of both.
     */
    long addressEnd(long offset) {
        long s = size;
        return offset < s ? s : Long.MAX_VALUE;
    }

    void growFile(long end) {
        if (end > fileSize) {
            fileSize = end;
        }
    }

    /** Refuses a change to an image opened read-only; {@code offset} is the guest offset concerned, or -1. */
    void requireWritable(long offset) throws ImageException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
        }
        if (corrupted != null) {
            throw new CorruptImageException(resource, offset, "the image was marked corrupt (" + corrupted
                    + "); no more writes");
        }
    }

    /**
     * Syncs the storage with the cached refcount changes written first: writing refcounts early is always
     * safe (see {@link Qcow2WriteBack}), and whatever a sync orders after it may then rely on them.
     */
    void syncAll() throws IOException {
        if (refcounts != null) {
            refcounts.writeDirty();
        }
        storage.sync();
    }

    /** As {@link #syncAll}, but while refcounts may be stale on disk (lazy, dirty image) they wait for the close. */
    void syncMetadata() throws IOException {
        if (!refcountsStale()) {
            refcounts.writeDirty();
        }
        storage.sync();
    }

    /**
     * Whether refcounts are kept lazily (QEMU's use_lazy_refcounts): the {@code lazy-refcounts} open option says so,
     * or without it the image has the lazy refcounts bit.
     */
    boolean lazyRefcounts() {
        Boolean option = lazyOption;
        return refcounts != null && (option != null ? option : header.lazyRefcounts()) && header.version() >= 3;
    }

    /**
     * Whether the refcounts on disk may disagree with the tables: the dirty bit is set on disk (QEMU's
     * !qcow2_need_accurate_refcounts), so a crash is followed by a refcount rebuild.
     */
    boolean refcountsStale() {
        return header.dirty();
    }
}
