package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.SUB_ALLOC_ALL;

import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.qcow2.internal.Qcow2Mapping.Kind;
import imago.qcow2.internal.Qcow2Mapping.Unit;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Growing (shrinking is {@link Qcow2Shrink}'s) as QEMU 7.2's qcow2_co_truncate: the L1 table grows as
 * {@link Qcow2L1Growth} grows it (a new table, synced before the header points at it), the bytes of the old last cluster past the old end are zeroed, and the header takes the new size,
 * synced. Growing an image whose backing file is longer than its old size hides the backing file's data in the new
 * area, as QEMU's truncate with BDRV_REQ_ZERO_WRITE: the header takes the grown L1 table (synced) with the old size,
 * then explicit zeroes go up to the next subcluster (an allocating write) and zero clusters or subclusters after
 * it, all flushed before the header takes the new size, so that no size ever shows the backing file there. With an
 * external data file, growing sets the data file to the new size (synced) before the header grows, or, when
 * preallocating, leaves it to {@link Qcow2Preallocation}. Every bitmap takes the new size along.
 */
final class Qcow2Resize extends Qcow2Room implements Resizer {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2CopyOnWrite cow;
    private final Qcow2WriteBack writeBack;
    private final Qcow2Zeroing zeroing;
    private final Qcow2Preallocation preallocator;
    private final Qcow2Shrink shrink;
    private final Qcow2L1Growth l1Growth;

    Qcow2Resize(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2CompressedReads compressedReads, Qcow2CopyOnWrite cow, Qcow2WriteBack writeBack,
            Qcow2Zeroing zeroing, Qcow2Preallocation preallocation) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.mapping = mapping;
        this.compressedReads = compressedReads;
        this.cow = cow;
        this.writeBack = writeBack;
        this.zeroing = zeroing;
        this.preallocator = preallocation;
        this.shrink = new Qcow2Shrink(st, tables, mapping, writeBack);
        this.l1Growth = new Qcow2L1Growth(st);
    }

    /**
     * Resizes without the backing chain: an image whose backing image would have to be read (it is longer than
     * the image before growing) is refused.
     */
    void resize(long newSize, Preallocation preallocation) throws IOException {
        BackingReader none = (dst, offset) -> {
            throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 resize with backing file", "growing a qcow2 "
                    + "image over its backing image needs the backing chain");
        };
        resize(newSize, preallocation, st.hasBacking() ? none
                : BackingReader.ZEROES);
    }

    /**
     * {@inheritDoc} The L1 table grows into new clusters ({@link Qcow2L1Growth}). When the backing
     * image is longer than the old size, the new area reads as zero, as QEMU 7.2's qcow2_co_truncate makes
     * it: explicit zeroes up to the next (sub)cluster boundary, zero clusters after it (qcow2 v3; v2 is
     * refused as QEMU fails it), written before the header gets the new size. Growing an image whose backing
     * file is not open is refused. Everything refused is refused before anything changes.
     */
    @Override
    public void resize(long newSize, Preallocation requested, BackingReader below) throws IOException {
        st.requireWritable(-1);
        if ((newSize & 511) != 0) {
            // QEMU's message, word for word
            throw new IllegalArgumentException("The new size must be a multiple of 512");
        }
        claims.lock();
        try {
            claims.awaitQuiet();
            // preallocation and shrinking look at the file's end: not at a part grown ahead
            writeBack.trimAhead();
            if (newSize == st.size) {
                return;
            }
            if (st.tracker != null) {
                // every bitmap follows the new size: refused for an inconsistent one, as QEMU refuses
                st.tracker.beforeResize(newSize);
            }
            try {
                resizeLocked(newSize, requested, below);
            } finally {
                if (st.tracker != null) {
                    st.tracker.resized(st.size);
                }
            }
        } finally {
            // the file may have been cut: the next write-back syncs before its L2 tables
            writeBack.forgetSyncedLength();
            claims.unlock();
        }
    }

    private void resizeLocked(long newSize, Preallocation requested, BackingReader below) throws IOException {
        long oldSize = st.size;
        if (newSize < oldSize) {
            if (requested != Preallocation.OFF) {
                throw new IllegalArgumentException(resource
                        + ": Preallocation can only be used for growing images");
            }
            shrink.shrink(oldSize, newSize);
            return;
        }
        // as QEMU: the metadata of a raw data file describes all of it, so growing preallocates it
        Preallocation preallocation = requested == Preallocation.OFF && st.header.hasDataFile()
                && st.header.dataFileRaw() ? Preallocation.METADATA : requested;
        boolean zeroNew = false;
        if (st.hasBacking()) {
            long backing = st.backingSize;
            if (backing < 0) {
                throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 resize with backing file", "growing a "
                        + "qcow2 image whose backing file is not open (its data could show through)");
            }
            zeroNew = backing > oldSize;
            if (zeroNew && st.header.version() < 3
                    && newSize > Qcow2Checks.divCeil(oldSize, clusterSize) * clusterSize) {
                // QEMU fails the same way past the old last cluster, which it zeroes explicitly: qcow2 v2 has
                // no zero clusters (qcow2_subcluster_zeroize)
                throw new UnsupportedFeatureException(resource, Feature.ZERO_CLUSTERS, "qcow2 v2 zero clusters",
                        "Failed to zero out new clusters: Operation not supported");
            }
        }
        long entries = Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ImageLimitException(resource, 36, "growing to " + newSize + " bytes needs an L1 table of "
                    + entries + " entries: Active L1 table too large");
        }
        long tailHost = -1;
        if (!zeroNew && (oldSize & (clusterSize - 1)) != 0) {
            // the bytes of the last cluster past the old end must read as zero after growing
            Unit tail = mapping.unit(oldSize - 1);
            // with extended L2 entries, subclusters past the old end may hold data whatever the last one holds
            boolean hosted = tail.kind() == Kind.DATA
                    || extendedL2 && tail.kind() != Kind.COMPRESSED && tail.host() >= 0;
            if (tail.kind() == Kind.COMPRESSED
                    || hosted && (tail.entry() & COPIED) == 0 && !st.header.hasDataFile()) {
                // a copy of its own, zeroed past the old end: the shared or compressed original stays as it is
                rewriteTail(oldSize, tail, below);
            } else if (hosted) {
                tailHost = tail.host() + 1;
            }
        }
        if (tailHost >= 0) {
            long n = clusterSize - (oldSize & (clusterSize - 1));
            if (st.header.hasDataFile()) {
                // a data file is not made longer for this: past its end it reads as zero already
                n = Math.max(0, Math.min(n, st.dataStorage().size() - tailHost));
            }
            if (n > 0) {
                st.writeData(ByteBuffer.allocate((int) n), tailHost); // encrypted zeroes in an encrypted image
            }
        }
        if (st.header.hasDataFile() && preallocation == Preallocation.OFF) {
            // as QEMU, the data file takes the new size exactly (the zeroed tail first, then synced with it)
            Storage data = st.dataStorage();
            data.resize(newSize, Preallocation.OFF);
            data.sync();
        }
        // the zeroed tail and a data file's new size are on stable media before the header grows; then the header
        // takes the larger L1 table (QEMU's qcow2_grow_l1_table, the size unchanged), and only then the new size
        st.syncAll();
        l1Growth.growTo(entries);
        if (zeroNew) {
            // the new area is zeroed before the header takes the new size
            zeroGrown(oldSize, newSize, below);
        }
        Qcow2HeaderFields.writeSize(storage, newSize);
        st.syncAll();
        st.size = newSize;
        if (preallocation != Preallocation.OFF) {
            // as QEMU's truncate: over a longer backing file, falloc and full (without a data file) give ordinary
            // data clusters, whose new file space reads as zero; metadata keeps the zero clusters, now with host
            // clusters
            preallocator.preallocate(oldSize, newSize, preallocation, zeroNew && preallocation != Preallocation.METADATA
                    && !st.header.hasDataFile(), below);
        }
    }

    /**
     * Makes {@code [oldSize, newSize)} read as zero rather than as the backing image, as QEMU 7.2's
     * qcow2_co_truncate with BDRV_REQ_ZERO_WRITE: explicit zeroes (an allocating write, copying the rest of
     * the cluster from {@code below}) up to the next subcluster boundary, zero clusters (or zero subclusters)
     * from there, all written ({@link #flush}) before the caller writes the new size into the header. The
     * virtual size is the new one meanwhile, and goes back to the old one on failure.
     */
    private void zeroGrown(long oldSize, long newSize, BackingReader below) throws IOException {
        long sub = 1L << unitBits;
        long zeroStart = Math.min(newSize, (oldSize + sub - 1) & -sub);
        st.size = newSize;
        try {
            if (zeroStart > oldSize) {
                zeroing.writeExplicitZeroes(oldSize, zeroStart, below);
            }
            for (long pos = zeroStart; pos < newSize; ) {
                long n = zeroing.zeroClusters(pos, newSize - pos, false, false);
                if (n <= 0) {
                    throw new IllegalStateException(resource + ": cannot zero the new cluster at " + pos);
                }
                pos += n;
            }
            // the zero entries reach stable media (tables in dependency order) before the header's new size
            writeBack.flush();
        } catch (IOException | RuntimeException e) {
            st.size = oldSize;
            throw e;
        }
    }

    /**
     * Copies the last, partial cluster of an image about to grow, which is compressed or shared with a
     * snapshot, to a new cluster of its own with the bytes past the old end zeroed (copying its L2 table
     * first when a snapshot shares it): synced before the L2 entry points at it; the old cluster loses the
     * reference on the next flush.
     */
    private void rewriteTail(long oldSize, Unit tail, BackingReader below) throws IOException {
        long clusterStart = (oldSize - 1) & ~(long) (clusterSize - 1);
        long guestCluster = clusterStart >>> clusterBits;
        int l1Index = st.geometry.l1Index(guestCluster);
        int index = st.geometry.l2Index(guestCluster);
        long l1e = st.l1[l1Index];
        boolean sharedL2 = (l1e & COPIED) == 0;
        st.requireRoom(sharedL2 ? 2 : 1);
        long l2Offset = l1e & OFFSET_MASK;
        if (sharedL2) {
            // the table is a snapshot's too: the active image gets its own copy before the entry changes
            l2Offset = tables.copyL2(l1Index, l2Offset);
        }
        long entry = tail.entry();
        byte[] plain;
        if (tail.kind() == Kind.COMPRESSED) {
            plain = compressedReads.decompressed(entry, clusterStart).clone();
        } else if (extendedL2) {
            // the guest's view: unallocated subclusters read from below (zeroes without a backing file)
            long bitmap = tables.table(l2Offset)[2 * index + 1];
            plain = new byte[clusterSize];
            cow.subclusterSource(clusterStart, entry & OFFSET_MASK, bitmap, below)
                    .read(ByteBuffer.wrap(plain), clusterStart);
        } else {
            plain = new byte[clusterSize];
            st.readData(ByteBuffer.wrap(plain), entry & OFFSET_MASK);
        }
        Arrays.fill(plain, (int) (oldSize - clusterStart), clusterSize, (byte) 0);
        long c = st.refcounts.allocate();
        long host = c << clusterBits;
        try {
            st.writeData(ByteBuffer.wrap(plain), host);
            st.growFile(host + clusterSize);
            st.syncAll();
        } catch (IOException | RuntimeException e) {
            st.refcounts.free(c);
            throw e;
        }
        long newEntry = host | COPIED;
        if (extendedL2) {
            // the whole cluster was copied: every subcluster is allocated
            tables.setExtendedL2Entry(l2Offset, index, newEntry, SUB_ALLOC_ALL);
        } else {
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newEntry);
            storage.write(e, l2Offset + index * 8L);
            tables.table(l2Offset)[index] = newEntry;
        }
        tables.dropReference(entry);
    }
}
