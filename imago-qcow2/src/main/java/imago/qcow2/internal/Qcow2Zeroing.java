package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.SUB_ZERO_ALL;
import static imago.qcow2.internal.Qcow2Entries.ZERO_FLAG;
import static imago.qcow2.internal.Qcow2Entries.subclusterMask;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.WriteTicket;
import imago.qcow2.internal.Qcow2Mapping.ExtendedSlot;
import imago.qcow2.internal.Qcow2Mapping.Kind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Set;

/**
 * Zero writes and discards with metadata alone, leaving the L2 entries and tables QEMU 7.2 leaves
 * (qcow2_co_pwrite_zeroes, qcow2_subcluster_zeroize, zero_in_l2_slice, discard_in_l2_slice): a request is split as
 * QEMU's block layer splits it; whole zero units (clusters, or subclusters with extended L2 entries; a discard works
 * on whole clusters) become zero clusters or unallocated, keeping or letting go of their host clusters; part of a
 * unit becomes zero only when the rest of it already reads as zero (by this layer's metadata, or by the backing
 * chain's through {@link BackingReader#readsAsZero}). qcow2 v2 has no zero flag: a zero write without a backing file
 * is a discard there, and one with a backing file is left to explicit zeroes. Both take the L2 table for writing
 * first, as QEMU's get_cluster_table does (a missing one is allocated, one shared with a snapshot copied, even when no
 * entry changes), since later clusters lie after it.
 *
 * <p>An L2 entry changes before the refcount of what it pointed at drops (on the next flush, see
 * {@link Qcow2WriteBack}); QEMU frees what a discard lets go of at once, so an allocation after a discard without a
 * flush in between is placed elsewhere than QEMU places it. An external data file's cluster is zeroed (raw) or
 * discarded instead. What cannot be done with metadata (data around part of a unit, part of a compressed cluster
 * with extended L2 entries) is left to explicit zeroes through the ordinary write path.
 */
final class Qcow2Zeroing extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2AllocatingWrites writes;

    Qcow2Zeroing(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2AllocatingWrites writes) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.mapping = mapping;
        this.writes = writes;
    }

    /**
     * A zero write without the backing chain: only this layer's own zero clusters count as zero around a partial
     * unit, and a write that would need to read below fails.
     */
    long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        BackingReader below = !st.hasBacking() ? BackingReader.ZEROES : (dst, at) -> {
            throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 zero write with backing file",
                    "writing zeroes into a qcow2 image over its backing image needs the backing chain");
        };
        return ensureZeroMapping(offset, length, mayUnmap ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of(), below);
    }

    /**
     * A zero write with the request's flags and what lies below the layer; as QEMU supports no zero-write flags on
     * v2, {@link ZeroFlag#NO_FALLBACK} fails there (0 handled). The persistent bitmaps that record writes get the
     * bits of what was handled. Returns how many bytes from {@code offset} it handled.
     */
    long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below) throws IOException {
        if (st.header.version() < 3 && flags.contains(ZeroFlag.NO_FALLBACK)) {
            return 0;
        }
        if (st.tracker == null) {
            return zeroRequest(offset, length, flags, below);
        }
        st.tracker.beforeChange();
        long handled = zeroRequest(offset, length, flags, below);
        st.tracker.written(offset, handled);
        return handled;
    }

    /**
     * A zero write from {@code offset}, split as QEMU's block layer splits it before the driver sees it: a partial
     * first zero unit, or a short request, alone; else the whole units from {@code offset} on, the unaligned end
     * of a longer request being a request of its own even at the end of the image (so that with extended L2
     * entries a partial last subcluster is zeroed apart from the rest of its cluster).
     */
    private long zeroRequest(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        st.requireWritable(offset);
        boolean unmap = flags.contains(ZeroFlag.MAY_UNMAP);
        long size = st.size;
        if (offset >= size) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        long unit = 1L << unitBits;
        long unitStart = offset & -unit;
        if (offset != unitStart || requestEnd < Math.min(unitStart + unit, size)) {
            return zeroPartialUnit(offset, requestEnd, unmap, below);
        }
        long alignedEnd = requestEnd & -unit;
        long pieceEnd = alignedEnd > offset ? alignedEnd : requestEnd;
        return extendedL2 ? zeroSubclusters(offset, pieceEnd - offset, unmap, false, false,
                !flags.contains(ZeroFlag.NO_FALLBACK), below) : zeroClusters(offset, pieceEnd - offset, unmap, false);
    }

    /**
     * A zero write over part of one zero unit, from {@code offset} to the unit's end or {@code requestEnd}. When
     * the rest of the unit reads as zero already (the unit is a zero one, or is unallocated here and what lies
     * below reads as zero there, by metadata), the whole unit is zeroed as a whole-unit zero write would zero it,
     * and the bytes are handled; otherwise (data, compressed data, or data below) nothing is, and the caller
     * writes zeroes.
     */
    private long zeroPartialUnit(long offset, long requestEnd, boolean unmap, BackingReader below)
            throws IOException {
        long unit = 1L << unitBits;
        long unitStart = offset & -unit;
        long unitEnd = unitStart + unit;
        long pieceEnd = Math.min(unitEnd, requestEnd);
        claims.lock();
        try {
            claims.awaitClusters(offset >>> clusterBits, offset >>> clusterBits);
            boolean restReadsZero = switch (mapping.unit(offset).kind()) {
                case ZERO_PLAIN, ZERO_ALLOC -> true;
                case UNALLOCATED -> below.readsAsZero(unitStart, offset - unitStart)
                        && below.readsAsZero(pieceEnd, Math.min(unitEnd, st.size) - pieceEnd);
                case DATA, COMPRESSED -> false;
            };
            if (!restReadsZero) {
                return 0;
            }
            boolean done;
            if (!extendedL2) {
                done = zeroCluster(unitStart, unmap, false, false);
            } else if ((unitStart & (clusterSize - 1)) == 0 && unitEnd >= st.size) {
                // the first subcluster of a last cluster that ends inside it: QEMU zeroes the whole cluster
                done = zeroExtendedCluster(unitStart, unmap, false, false);
            } else {
                done = zeroSubclusterRange(unitStart, unitEnd);
            }
            return done ? pieceEnd - offset : 0;
        } finally {
            claims.unlock();
        }
    }

    /** A discard of the whole clusters in the range. The persistent bitmaps that record writes get the whole range, as in QEMU. */
    void discard(long offset, long length) throws IOException {
        st.requireWritable(offset);
        if (st.tracker != null) {
            st.tracker.written(offset, length);
        }
        long cs = clusterSize;
        long first = (offset + cs - 1) & ~(cs - 1);
        long pos = first;
        long end = offset + length;
        while (pos < end) {
            long handled = zeroClusters(pos, end - pos, true, true);
            if (handled == 0) {
                // a cluster imago cannot unmap (no room to copy its shared L2 table) keeps its data, which a
                // discard allows
                handled = Math.min(end - pos, cs);
            }
            pos += handled;
        }
    }

    /**
     * Zeroes ({@code discard} false) or discards whole clusters from {@code offset} (cluster aligned) with
     * metadata alone and returns how many bytes it handled; stops at the first cluster it cannot handle.
     */
    long zeroClusters(long offset, long length, boolean unmap, boolean discard) throws IOException {
        return zeroClusters(offset, length, unmap, discard, false);
    }

    /** {@link #zeroClusters(long, long, boolean, boolean)}, or with {@code full} QEMU's full discard. */
    long zeroClusters(long offset, long length, boolean unmap, boolean discard, boolean full)
            throws IOException {
        st.requireWritable(offset);
        if (extendedL2) {
            // (discards, and zeroing a grown area, never write explicit zeroes, so never read below)
            return zeroSubclusters(offset, length, unmap, discard, full, true, BackingReader.ZEROES);
        }
        long size = st.size;
        if ((offset & (clusterSize - 1)) != 0 || offset >= size) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        // a request that reaches the end of the image covers the partial last cluster
        long end = requestEnd == size ? offset + Qcow2Checks.divCeil(size - offset, clusterSize) * clusterSize
                : requestEnd & ~(long) (clusterSize - 1);
        long pos = offset;
        claims.lock();
        try {
            while (pos < end) {
                claims.awaitClusters(pos >>> clusterBits, pos >>> clusterBits);
                if (!zeroCluster(pos, unmap, discard, full)) {
                    break;
                }
                pos += clusterSize;
            }
        } finally {
            claims.unlock();
        }
        return Math.min(pos, requestEnd) - offset;
    }

    /**
     * One whole cluster (standard L2 entries) of a zero write, a discard or ({@code full}) a full discard:
     * <ul>
     * <li>a zero write (v3) sets the zero flag, with or without a backing file, and lets go of the host cluster of
     *     a compressed cluster and, with {@code unmap}, of any other; otherwise the cluster keeps its host cluster,
     *     even one shared with a snapshot (a later write copies it);
     * <li>a discard, and a v2 zero write without a backing file, lets go of the host cluster and leaves a zero
     *     cluster (v3) or an unallocated one (v2); an unallocated cluster stays so unless there is a backing file;
     * <li>a full discard leaves the entry empty, so that reads fall through to the backing file (as used to
     *     empty an image after a commit);
     * <li>on v2 with a backing file, a zero write is left to the caller (explicit zeroes, false) and a discard
     *     keeps the data, which a discard allows (QEMU refuses it so as not to expose the backing file's data).
     * </ul>
     * The L2 table is taken for writing even when the entry stays as it is (except for a full discard). False
     * when there is no room for an L2 table. Under the allocation lock.
     */
    private boolean zeroCluster(long pos, boolean unmap, boolean discard, boolean full) throws IOException {
        boolean backing = st.hasBacking();
        boolean v3 = st.header.version() >= 3;
        if (!v3 && backing && !full) {
            return discard;
        }
        Kind kind = mapping.unit(pos).kind();
        long cluster = pos >>> clusterBits;
        int l1Index = st.geometry.l1Index(cluster);
        int index = st.geometry.l2Index(cluster);
        long l1e = st.l1[l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
        long entry = l2Offset == 0 ? 0 : tables.table(l2Offset)[index];
        boolean allocated = kind == Kind.DATA || kind == Kind.ZERO_ALLOC || kind == Kind.COMPRESSED;
        if (sharedL2 && (entry & COPIED) != 0) {
            throw mapping.corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
        }
        long newEntry;
        if (full) {
            newEntry = 0;
        } else if (discard || !v3) {
            newEntry = backing || allocated ? (v3 ? ZERO_FLAG : 0) : entry;
        } else {
            boolean drop = kind == Kind.COMPRESSED || unmap && allocated;
            newEntry = (drop ? 0 : entry) | ZERO_FLAG;
        }
        if (newEntry == entry && (full || l2Offset != 0 && !sharedL2)) {
            return true;
        }
        l2Offset = ownTable(l1Index, l2Offset, sharedL2);
        if (l2Offset < 0) {
            return false;
        }
        if (newEntry != entry) {
            tables.setL2Entry(l2Offset, index, newEntry);
            // (a data file cluster is the image's own by COPIED, even at host offset 0)
            boolean letGo = allocated && (newEntry & (OFFSET_MASK | COPIED)) == 0;
            if (st.header.hasDataFile()) {
                if (letGo || kind == Kind.DATA && st.header.dataFileRaw()) {
                    st.clearDataFile(entry & OFFSET_MASK);
                }
            } else if (letGo) {
                tables.dropReference(entry);
            }
        }
        return true;
    }

    /**
     * {@link #zeroClusters} for images with extended L2 entries: zero writes work on whole subclusters (part of
     * one is {@link #zeroPartialUnit}'s), a discard on whole clusters only (as QEMU's discard granularity is the
     * cluster). Returns how many bytes from {@code offset} it handled: 0 when {@code offset} is not aligned, and it
     * stops before a part it cannot handle (no room for an L2 table). As in QEMU, whose request fails as a whole
     * then, a zero write whose partial first or last cluster is compressed (its subclusters cannot be marked
     * zero) writes explicit zeroes over all of it, copying on write from {@code below}; without {@code fallback}
     * it stops before that cluster instead.
     */
    private long zeroSubclusters(long offset, long length, boolean unmap, boolean discard, boolean full,
            boolean fallback, BackingReader below) throws IOException {
        long size = st.size;
        long grain = discard ? clusterSize : 1L << unitBits;
        if (offset >= size || (offset & (grain - 1)) != 0) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        // a request that reaches the end of the image covers the partial last unit
        long end = requestEnd == size ? Qcow2Checks.divCeil(size, grain) * grain : requestEnd & -grain;
        long pos = offset;
        boolean explicit = false;
        claims.lock();
        try {
            long compressed = discard || full ? -1 : compressedPartialCluster(offset, end);
            if (compressed >= 0 && fallback) {
                explicit = true;
                end = offset;
            } else if (compressed >= 0) {
                // QEMU zeroes up to the compressed cluster and then fails (the caller reports it, asked again)
                end = compressed;
            }
            while (pos < end) {
                claims.awaitClusters(pos >>> clusterBits, pos >>> clusterBits);
                long clusterEnd = (pos & -(long) clusterSize) + clusterSize;
                long pieceEnd = Math.min(end, clusterEnd);
                boolean whole = (pos & (clusterSize - 1)) == 0 && (pieceEnd == clusterEnd || pieceEnd >= size);
                boolean done = whole ? zeroExtendedCluster(pos, unmap, discard, full)
                        : !discard && zeroSubclusterRange(pos, pieceEnd);
                if (!done) {
                    break;
                }
                pos = pieceEnd;
            }
        } finally {
            claims.unlock();
        }
        if (explicit) {
            pos = requestEnd;
            writeExplicitZeroes(offset, pos, below);
        }
        return Math.min(pos, requestEnd) - offset;
    }

    /**
     * Where the zero write {@code [from, to)} (subcluster aligned) covers part of a compressed cluster, whose
     * subclusters cannot be marked zero: {@code from} when it starts inside one, the start of the last cluster
     * when it ends inside one (as QEMU's qcow2_subcluster_zeroize splits it: the head before the first whole
     * cluster, the tail after the last, none at the end of the image), -1 otherwise. Under the allocation lock.
     */
    private long compressedPartialCluster(long from, long to) throws IOException {
        long cs = clusterSize;
        long headEnd = Math.min(to, (from + cs - 1) & -cs);
        if (headEnd > from && mapping.unit(from).kind() == Kind.COMPRESSED) {
            return from;
        }
        long tailStart = Math.max(headEnd, to & -cs);
        return to < st.size && tailStart < to && mapping.unit(tailStart).kind() == Kind.COMPRESSED ? tailStart : -1;
    }

    /**
     * Zeroes, discards or ({@code full}) empties one whole cluster with an extended L2 entry: a zero write marks
     * every subcluster zero and keeps the host cluster (even one shared with a snapshot, which a later write
     * copies) unless {@code unmap} or it is compressed; a discard lets go of the host cluster and marks the
     * subclusters zero (left alone when nothing is allocated and there is no backing file); a full discard leaves
     * the entry empty. The L2 table is taken for writing even when the entry stays as it is (except for a full
     * discard). False when there is no room for an L2 table. Under the allocation lock.
     */
    private boolean zeroExtendedCluster(long pos, boolean unmap, boolean discard, boolean full) throws IOException {
        boolean backing = !full && st.hasBacking();
        ExtendedSlot slot = mapping.slot(pos);
        long cluster = slot.cluster();
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        boolean compressed = (entry & COMPRESSED) != 0;
        boolean dataFile = st.header.hasDataFile();
        boolean allocated = compressed || (entry & OFFSET_MASK) != 0 || dataFile && (entry & COPIED) != 0;
        long newEntry;
        long newBitmap;
        if (full) {
            newEntry = 0;
            newBitmap = 0;
        } else if (discard) {
            // an unallocated cluster without a backing file reads as zero already
            boolean change = allocated || backing;
            newEntry = change ? 0 : entry;
            newBitmap = change ? SUB_ZERO_ALL : bitmap;
        } else {
            boolean keep = allocated && !compressed && !unmap;
            newEntry = keep ? entry : 0;
            newBitmap = SUB_ZERO_ALL;
        }
        boolean changed = newEntry != entry || newBitmap != bitmap;
        if (!changed && (full || l2Offset != 0 && !sharedL2)) {
            return true;
        }
        l2Offset = ownTable(l1Index, l2Offset, sharedL2);
        if (l2Offset < 0) {
            return false;
        }
        if (!changed) {
            return true;
        }
        tables.setExtendedL2Entry(l2Offset, index, newEntry, newBitmap);
        if (dataFile) {
            // not refcounted: a raw data file is zeroed, otherwise the space is given back
            if (allocated) {
                st.clearDataFile(cluster << clusterBits);
            }
        } else if (newEntry != entry) {
            tables.dropReference(entry);
        }
        return true;
    }

    /**
     * Marks the subclusters of {@code [pos, end)} (subcluster aligned, within one cluster) zero, keeping the
     * cluster's host offset, as QEMU's zero_l2_subclusters (which also takes the L2 table first); false when there
     * is no room for an L2 table, or the cluster is compressed (QEMU cannot mark part of one zero: the caller
     * writes zeroes). Under the allocation lock.
     */
    private boolean zeroSubclusterRange(long pos, long end) throws IOException {
        ExtendedSlot slot = mapping.slot(pos);
        long clusterStart = slot.cluster() << clusterBits;
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        if ((entry & COMPRESSED) != 0) {
            return false;
        }
        int sub = 1 << unitBits;
        long mask = subclusterMask((int) (pos - clusterStart) >>> unitBits,
                (int) ((end - clusterStart + sub - 1) >>> unitBits));
        long newBitmap = (bitmap & ~mask) | (mask << 32);
        if (newBitmap == bitmap && l2Offset != 0 && !sharedL2) {
            return true;
        }
        l2Offset = ownTable(l1Index, l2Offset, sharedL2);
        if (l2Offset < 0) {
            return false;
        }
        if (newBitmap == bitmap) {
            return true;
        }
        tables.setExtendedL2Entry(l2Offset, index, entry, newBitmap);
        if (st.header.hasDataFile() && st.header.dataFileRaw() && (entry & COPIED) != 0) {
            // a raw data file shows the guest's bytes
            long from = pos;
            long to = Math.min(end, st.size);
            st.dataStorage().writeZeroes((entry & OFFSET_MASK) + (from - clusterStart), to - from, true);
        }
        return true;
    }

    /**
     * Writes explicit zeroes over {@code [from, to)} through the ordinary write path (allocating, copying on
     * write from {@code below}), as QEMU's block layer does where a zero write cannot be done with metadata.
     * Not under the allocation lock.
     */
    void writeExplicitZeroes(long from, long to, BackingReader below) throws IOException {
        ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(to - from, 1 << 20));
        for (long pos = from; pos < to; ) {
            long want = Math.min(zeroes.capacity(), to - pos);
            try (WriteTicket t = writes.beginWrite(pos, want, below)) {
                int n = (int) Math.min(t.mapping().length(), want);
                t.write(zeroes.clear().limit(n));
                t.commit();
                pos += n;
            }
        }
    }

    /**
     * The L2 table of L1 entry {@code l1Index} as the active image's own: as it is, newly allocated (none yet) or
     * copied (shared with a snapshot); -1 when there is no room for a new table.
     */
    private long ownTable(int l1Index, long l2Offset, boolean sharedL2) throws IOException {
        if (l2Offset != 0 && !sharedL2) {
            return l2Offset;
        }
        if (!st.refcounts.canAllocate(1)) {
            return -1;
        }
        return l2Offset == 0 ? tables.allocateL2(l1Index) : tables.copyL2(l1Index, l2Offset);
    }
}
