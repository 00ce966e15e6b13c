package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.SUB_ALLOC_ALL;
import static imago.qcow2.internal.Qcow2Entries.subclusterMask;

import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.qcow2.internal.Qcow2Mapping.ExtendedSlot;
import java.io.IOException;

/**
 * Allocating writes with extended L2 entries (subclusters), as QEMU 7.2 does them: a write allocates a host cluster
 * for a cluster without one, but only the subclusters it touches become allocated, and only the parts of its first
 * and last subcluster outside the write are copied (from below, or zeroes for zero subclusters, zeroed in the file
 * where nothing lies below: {@link Qcow2CopyOnWrite}); a write into
 * unallocated or zero subclusters of a cluster of ours goes in place and sets their bits (the allocated bits and
 * the cleared zero bits are committed like a new entry, after the data); compressed and snapshot-shared clusters
 * are copied to a new cluster. Called by {@link Qcow2AllocatingWrites} under the allocation lock.
 */
final class Qcow2SubclusterWrites extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2Guard guard;
    private final Qcow2CopyOnWrite cow;
    private final Qcow2CompressedReads compressedReads;

    Qcow2SubclusterWrites(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2Guard guard, Qcow2CopyOnWrite cow, Qcow2CompressedReads compressedReads) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.mapping = mapping;
        this.guard = guard;
        this.cow = cow;
        this.compressedReads = compressedReads;
    }

    /**
     * {@code bitmap} with the subclusters that bytes {@code [from, to)} of the cluster touch allocated (their
     * zero bits cleared).
     */
    private long withAllocated(long bitmap, int from, int to) {
        long mask = subclusterMask(from >>> unitBits, (to + (1 << unitBits) - 1) >>> unitBits);
        return (bitmap | mask) & ~(mask << 32);
    }

    /**
     * {@link Qcow2AllocatingWrites#begin} for images with extended L2 entries, within one cluster (or a run of clusters
     * that hold nothing, {@link #allocateSubclusterRun}), as QEMU does it:
     * only the subclusters the write touches become allocated, and only their parts outside the write are
     * filled (copy-on-write from below, zeroes for zero subclusters); untouched subclusters stay as they are.
     * A cluster of ours (COPIED) is written in place, its bitmap changing on commit; a cluster without host
     * space gets a new one. A compressed cluster is rewritten whole into a new cluster; one shared with a
     * snapshot is copied from its first to its last allocated subcluster (the write included) and loses the
     * reference on commit. Under the allocation lock; a {@link Qcow2WriteTicket.Held} unless the write lands in allocated
     * subclusters of our cluster, which takes the inPlace read lock.
     */
    Qcow2WriteTicket begin(long offset, long length, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        int n = (int) Math.min(length, clusterSize - inCluster);
        ExtendedSlot slot = mapping.slot(offset);
        long cluster = slot.cluster();
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        boolean compressed = (entry & COMPRESSED) != 0;
        boolean dataFile = st.header.hasDataFile();
        long host = compressed ? 0 : entry & OFFSET_MASK;
        // an external data file's cluster (at its guest offset, not refcounted) is mapped by COPIED, even at 0
        boolean hasHost = !compressed && (host != 0 || dataFile && (entry & COPIED) != 0);
        if (!compressed && ((bitmap & (bitmap >>> 32) & SUB_ALLOC_ALL) != 0
                || !hasHost && (bitmap & SUB_ALLOC_ALL) != 0)) {
            throw mapping.corruptL2(l2Offset, index, entry, "invalid subcluster bitmap 0x" + Long.toHexString(bitmap));
        }
        int firstSc = inCluster >>> unitBits;
        int endSc = ((inCluster + n - 1) >>> unitBits) + 1;
        long touched = subclusterMask(firstSc, endSc);
        long alloc = compressed ? 0 : bitmap & SUB_ALLOC_ALL;
        if (hasHost && !sharedL2 && (entry & COPIED) != 0) {
            guard.guardInPlace(host);
            Mapping.Data d = new Mapping.Data(offset, n, st.dataStorage(), host + inCluster);
            if ((alloc & touched) == touched) {
                // refcount 1 and allocated: write in place
                return new Qcow2WriteTicket.InPlace(d, claims);
            }
            // partial head or tail subclusters that were not allocated are filled around the write
            int from = (alloc & (1L << firstSc)) != 0 ? inCluster : firstSc << unitBits;
            int to = (alloc & (1L << (endSc - 1))) != 0 ? inCluster + n : endSc << unitBits;
            cow.copyAround(host, clusterStart, from, inCluster, inCluster + n, to,
                    cow.subclusterSource(clusterStart, host, bitmap, below));
            return new Qcow2WriteTicket.Held(d, claims, tables, new Qcow2Allocation(l2Offset, index, entry, -1, 0, 1,
                    new long[] {withAllocated(bitmap, from, to)}));
        }
        st.requireRoom(l2Offset == 0 || sharedL2 ? 2 : 1);
        if (l2Offset == 0) {
            l2Offset = tables.allocateL2(l1Index);
        } else if (sharedL2) {
            l2Offset = tables.copyL2(l1Index, l2Offset);
        }
        int from;
        int to;
        long base;
        BackingReader source;
        if (compressed) {
            byte[] plain = compressedReads.decompressed(entry, clusterStart);
            source = (dst, at) -> dst.put(plain, (int) (at - clusterStart), dst.remaining());
            from = 0;
            to = clusterSize;
            base = 0;
        } else if (hasHost) {
            // shared with a snapshot: the allocated subclusters move to the new cluster along with the write
            int lowest = alloc == 0 ? firstSc : Math.min(firstSc, Long.numberOfTrailingZeros(alloc));
            int highest = alloc == 0 ? endSc : Math.max(endSc, 64 - Long.numberOfLeadingZeros(alloc));
            from = lowest << unitBits;
            to = highest << unitBits;
            base = bitmap;
            source = cow.subclusterSource(clusterStart, host, bitmap, below);
        } else {
            int run = entry == 0 ? extendedEmptyRun(l2Offset, cluster, inCluster + length) : 1;
            if (dataFile) {
                // the data file holds each cluster at its guest offset
                return allocateSubclusterRun(offset, length, l2Offset, index, cluster, false, run, below);
            }
            long first = run > 1 ? st.refcounts.allocateDataRun(run) : -1;
            if (first >= 0) {
                return allocateSubclusterRun(offset, length, l2Offset, index, first, true, run, below);
            }
            from = firstSc << unitBits;
            to = endSc << unitBits;
            base = bitmap;
            source = cow.subclusterSource(clusterStart, 0, bitmap, below);
        }
        long c = st.refcounts.allocate();
        long newHost = c << clusterBits;
        st.growFile(newHost + clusterSize);
        try {
            cow.copyAround(newHost, clusterStart, from, inCluster, inCluster + n, to, source);
        } catch (IOException | RuntimeException e) {
            st.refcounts.free(c);
            throw e;
        }
        Mapping.Data d = new Mapping.Data(offset, n, st.dataStorage(), newHost + inCluster);
        return new Qcow2WriteTicket.Held(d, claims, tables, new Qcow2Allocation(l2Offset, index, newHost | COPIED, c,
                entry, 1, new long[] {withAllocated(base, from, to)}));
    }

    /**
     * How many clusters from guest cluster {@code cluster} on have no host cluster and no allocated subcluster
     * and are touched by a write of {@code span} bytes from the start of the first, within one L2 table (the
     * first is known to qualify); as {@code Qcow2AllocatingWrites.emptyRun} for extended L2 entries.
     */
    private int extendedEmptyRun(long l2Offset, long cluster, long span) throws IOException {
        int index = st.geometry.l2Index(cluster);
        long touched = Qcow2Checks.divCeil(span, clusterSize);
        int limit = (int) Math.min(Math.min(touched, st.geometry.maxWriteRun()), (1L << l2Bits) - index);
        limit = (int) Math.min(limit, Qcow2Checks.divCeil(st.addressEnd(cluster << clusterBits), clusterSize) - cluster);
        long[] table = tables.table(l2Offset);
        int n = 1;
        while (n < limit && table[2 * (index + n)] == 0 && (table[2 * (index + n) + 1] & SUB_ALLOC_ALL) == 0) {
            n++;
        }
        return n;
    }

    /**
     * Uses the {@code count} contiguous host clusters from {@code first} for the write at {@code offset}, whose
     * clusters have no host cluster and no allocated subcluster: only the part of the first subcluster before
     * the write and of the last after it are filled (from below, or zeroes for zero subclusters), and one
     * mapping covers the run, so that the data goes to the host in one write. The written subclusters become
     * allocated on commit. Under the allocation lock, which the ticket holds until it completes.
     */
    private Qcow2WriteTicket allocateSubclusterRun(long offset, long length, long l2Offset, int index, long first,
            boolean refcounted, int count, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        long host = first << clusterBits;
        long runBytes = (long) count << clusterBits;
        long n = Math.min(length, runBytes - inCluster);
        if (refcounted) {
            st.growFile(host + runBytes);
        }
        long[] table = tables.table(l2Offset);
        long lastStart = runBytes - clusterSize;
        int sub = 1 << unitBits;
        int headFrom = inCluster & -sub;
        int lastEnd = (int) (inCluster + n - lastStart);
        int tailTo = Math.min(clusterSize, (lastEnd + sub - 1) & -sub);
        try {
            if (headFrom < inCluster) {
                cow.copyPart(host, clusterStart, headFrom, inCluster,
                        cow.subclusterSource(clusterStart, 0, table[2 * index + 1], below));
            }
            if (lastEnd < tailTo) {
                cow.copyPart(host + lastStart, clusterStart + lastStart, lastEnd, tailTo,
                        cow.subclusterSource(clusterStart + lastStart, 0, table[2 * (index + count - 1) + 1], below));
            }
        } catch (IOException | RuntimeException e) {
            for (int k = 0; refcounted && k < count; k++) {
                st.refcounts.free(first + k);
            }
            throw e;
        }
        long[] bitmaps = new long[count];
        for (int k = 0; k < count; k++) {
            int from = k == 0 ? headFrom : 0;
            int to = k == count - 1 ? tailTo : clusterSize;
            bitmaps[k] = withAllocated(table[2 * (index + k) + 1], from, to);
        }
        Mapping.Data d = new Mapping.Data(offset, n, st.dataStorage(), host + inCluster);
        return new Qcow2WriteTicket.Held(d, claims, tables, new Qcow2Allocation(l2Offset, index, host | COPIED,
                refcounted ? first : -1, 0, count, bitmaps));
    }
}
