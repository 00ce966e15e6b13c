package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;
import static imago.qcow2.internal.Qcow2Entries.ZERO_FLAG;

import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.api.spi.WriteTicket;
import imago.qcow2.internal.Qcow2Mapping.Kind;
import imago.qcow2.internal.Qcow2Mapping.Unit;
import java.io.IOException;

/**
 * Allocating writes: maps a write to host space (allocating and copying on write) and hands out the
 * {@link Qcow2WriteTicket} of the kind that applies, which sets the L2 entries only once the data is written and
 * gives the clusters back if it is not. A cluster of ours is written in place; a new cluster (for one that held
 * nothing, or a copy of a zero, compressed or snapshot-shared one) holds the allocation lock until the commit; a
 * write over several clusters that held nothing takes one contiguous host run, goes to the host in one write and is
 * written without the lock while its guest clusters are claimed (standard L2 entries). Extended L2 entries go to
 * {@link Qcow2SubclusterWrites}. A shared L2 table is copied, and a missing one allocated, before an entry in it
 * changes; a refused write is refused before anything changes.
 */
final class Qcow2AllocatingWrites extends Qcow2Room {
    private final Qcow2Tables tables;
    private final Qcow2Claims claims;
    private final Qcow2Mapping mapping;
    private final Qcow2Guard guard;
    private final Qcow2CopyOnWrite cow;
    private final Qcow2CompressedReads compressedReads;
    private final Qcow2SubclusterWrites subclusterWrites;
    private final Qcow2EncryptedWrites encrypted;

    Qcow2AllocatingWrites(Qcow2State st, Qcow2Tables tables, Qcow2Claims claims, Qcow2Mapping mapping,
            Qcow2Guard guard, Qcow2CopyOnWrite cow, Qcow2CompressedReads compressedReads,
            Qcow2SubclusterWrites subclusterWrites) {
        super(st);
        this.tables = tables;
        this.claims = claims;
        this.mapping = mapping;
        this.guard = guard;
        this.cow = cow;
        this.compressedReads = compressedReads;
        this.subclusterWrites = subclusterWrites;
        this.encrypted = new Qcow2EncryptedWrites(st, mapping, compressedReads);
    }

    /**
     * Begins a write of the bytes from {@code offset}: the persistent bitmaps that record writes are marked in use
     * first, and get the bits of the ticket's mapping before the data is written.
     */
    WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        st.requireWritable(offset);
        if (offset < 0 || length < 1 || offset >= st.size) {
            throw new IllegalArgumentException(resource + ": bad write: offset " + offset + ", length " + length);
        }
        if (st.crypto != null) {
            return encrypted.begin(offset, length, below, this::beginTracked);
        }
        return beginTracked(offset, length, below);
    }

    /**
     * Begins a write into the VM state area ({@link Qcow2VmState}) at guest offset {@code offset}, past the virtual
     * size, whose L1 entry exists: as {@link #beginWrite}, but the persistent bitmaps, which cover the guest disk,
     * are left alone (as QEMU's VM state writes, which bypass its block layer's dirty tracking).
     */
    WriteTicket beginVmState(long offset, long length, BackingReader below) throws IOException {
        st.requireWritable(-1);
        if (offset < st.size || length < 1 || (offset >>> clusterBits >>> l2Bits) >= st.l1.length) {
            throw new IllegalArgumentException(resource + ": bad VM state write: offset " + offset + ", length "
                    + length);
        }
        return st.crypto != null ? encrypted.begin(offset, length, below, this::begin) : begin(offset, length, below);
    }

    private Qcow2WriteTicket beginTracked(long offset, long length, BackingReader below) throws IOException {
        if (st.tracker == null) {
            return begin(offset, length, below);
        }
        st.tracker.beforeChange();
        Qcow2WriteTicket t = begin(offset, length, below);
        st.tracker.written(t.mapping().offset(), t.mapping().length());
        return t;
    }

    /**
     * Maps the bytes from {@code offset} for writing (allocating and copying on write) and returns the ticket of
     * the kind that applies; for callers that keep the bitmaps themselves (zeroing; the caller may hold the
     * allocation lock already, which the ticket then holds once more).
     */
    Qcow2WriteTicket begin(long offset, long length, BackingReader below) throws IOException {
        claims.lock();
        boolean keepLock = false;
        try {
            if (claims.holding()) {
                throw new IllegalStateException(resource + ": the previous allocating write was not completed");
            }
            long span = Math.min(length, ((long) st.geometry.maxWriteRun() << clusterBits) - (offset & (clusterSize - 1)));
            claims.awaitClusters(offset >>> clusterBits, (offset + span - 1) >>> clusterBits);
            if (extendedL2) {
                Qcow2WriteTicket t = subclusterWrites.begin(offset, length, below);
                // an in-place write into allocated subclusters holds the in-place read lock instead
                keepLock = t instanceof Qcow2WriteTicket.Held;
                return t;
            }
            long clusterStart = offset & ~(long) (clusterSize - 1);
            int inCluster = (int) (offset - clusterStart);
            int n = (int) Math.min(length, clusterSize - inCluster);
            // validates the L1 and L2 entries before anything changes
            Unit u = mapping.unit(offset);
            long cluster = offset >>> clusterBits;
            int l1Index = st.geometry.l1Index(cluster);
            int index = st.geometry.l2Index(cluster);
            long l1e = st.l1[l1Index];
            long l2Offset = l1e & OFFSET_MASK;
            // an L2 table without COPIED is shared with a snapshot: it is copied before it changes
            boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
            long entry = l2Offset == 0 ? 0 : tables.table(l2Offset)[index];
            if (sharedL2 && (entry & COPIED) != 0) {
                throw mapping.corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
            }
            // a data file cluster is the image's own even without COPIED (it is not refcounted)
            boolean own = !sharedL2 && ((entry & COPIED) != 0 || st.header.hasDataFile() && u.kind() != Kind.UNALLOCATED
                    && u.kind() != Kind.ZERO_PLAIN);
            if (u.kind() == Kind.DATA && own) {
                // refcount 1: write in place
                guard.guardInPlace(entry & OFFSET_MASK);
                Mapping.Data d = new Mapping.Data(offset, n, st.dataStorage(), (entry & OFFSET_MASK) + inCluster);
                return new Qcow2WriteTicket.InPlace(d, claims);
            }
            if (u.kind() == Kind.ZERO_ALLOC && own) {
                long host = entry & OFFSET_MASK;
                guard.guardInPlace(host);
                cow.copyOnWrite(host, clusterStart, inCluster, n, BackingReader.ZEROES);
                Mapping.Data d = new Mapping.Data(offset, n, st.dataStorage(), host + inCluster);
                keepLock = true;
                return new Qcow2WriteTicket.Held(d, claims, tables, new Qcow2Allocation(l2Offset, index, host | COPIED,
                        -1, 0));
            }
            switch (u.kind()) {
                case UNALLOCATED, ZERO_PLAIN, COMPRESSED, DATA, ZERO_ALLOC -> {
                    // a new cluster; a shared one (COPIED clear) is copied and loses the reference on commit
                    st.requireRoom(l2Offset == 0 || sharedL2 ? 2 : 1);
                    if (l2Offset == 0) {
                        l2Offset = tables.allocateL2(l1Index);
                    } else if (sharedL2) {
                        l2Offset = tables.copyL2(l1Index, l2Offset);
                    }
                    int run = emptyRun(l2Offset, cluster, entry, inCluster + length);
                    if (st.header.hasDataFile()) {
                        // an external data file holds each cluster at its guest offset, not refcounted
                        Qcow2WriteTicket.Held t = new Qcow2WriteTicket.Held(runMapping(offset, length, cluster, run),
                                claims, tables, fillRun(offset, length, l2Offset, index, cluster, false, run, u.kind(),
                                below));
                        keepLock = true;
                        return t;
                    }
                    long first = run > 1 ? st.refcounts.allocateDataRun(run) : -1;
                    if (first >= 0) {
                        // the data is written without the lock; the clusters stay claimed until the ticket completes
                        return new Qcow2WriteTicket.InFlight(runMapping(offset, length, first, run), claims, tables,
                                fillRun(offset, length, l2Offset, index, first, true, run, u.kind(), below), clusterBits);
                    }
                    long c = st.refcounts.allocate();
                    long host = c << clusterBits;
                    st.growFile(host + clusterSize);
                    try {
                        long oldHost = entry & OFFSET_MASK;
                        BackingReader source = switch (u.kind()) {
                            case ZERO_PLAIN, ZERO_ALLOC -> BackingReader.ZEROES;
                            case DATA -> (dst, at) -> st.readData(dst, oldHost + (at - clusterStart));
                            case COMPRESSED -> {
                                byte[] plain = compressedReads.decompressed(entry, clusterStart);
                                yield (dst, at) -> dst.put(plain, (int) (at - clusterStart), dst.remaining());
                            }
                            default -> below;
                        };
                        cow.copyOnWrite(host, clusterStart, inCluster, n, source);
                    } catch (IOException | RuntimeException e) {
                        st.refcounts.free(c);
                        throw e;
                    }
                    Mapping.Data d = new Mapping.Data(offset, n, storage, host + inCluster);
                    keepLock = true;
                    return new Qcow2WriteTicket.Held(d, claims, tables, new Qcow2Allocation(l2Offset, index,
                            host | COPIED, c, entry));
                }
                default -> throw new IllegalStateException(u.kind().toString());
            }
        } finally {
            if (!keepLock) {
                claims.unlock();
            }
        }
    }

    /**
     * How many clusters from guest cluster {@code cluster} on hold nothing (unallocated, or zero without host
     * space) and are touched by a write of {@code span} bytes from the start of the first cluster, within
     * one L2 table; 1 if the first does not qualify.
     */
    private int emptyRun(long l2Offset, long cluster, long entry, long span) throws IOException {
        if ((entry & ~ZERO_FLAG) != 0 || extendedL2) {
            return 1;
        }
        int index = st.geometry.l2Index(cluster);
        long touched = Qcow2Checks.divCeil(span, clusterSize);
        int limit = (int) Math.min(Math.min(touched, st.geometry.maxWriteRun()), (1L << l2Bits) - index);
        limit = (int) Math.min(limit, Qcow2Checks.divCeil(st.addressEnd(cluster << clusterBits), clusterSize) - cluster);
        long[] table = tables.table(l2Offset);
        int n = 1;
        while (n < limit && (table[index + n] & ~ZERO_FLAG) == 0) {
            n++;
        }
        return n;
    }

    /**
     * Uses the {@code count} contiguous host clusters from {@code first} (allocated from the refcounts when
     * {@code refcounted}; else the external data file's clusters at their guest offset) for the write at
     * {@code offset}, whose clusters hold nothing: only the head of the first and the tail of the last cluster are filled from
     * {@code below} (or zeroes, for zero clusters), and one mapping covers the whole run, so that the
     * data goes to the host in one write ({@link #runMapping}). Under the allocation lock.
     */
    private Qcow2Allocation fillRun(long offset, long length, long l2Offset, int index, long first,
            boolean refcounted, int count, Kind kind, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        long host = first << clusterBits;
        long runBytes = (long) count << clusterBits;
        long n = Math.min(length, runBytes - inCluster);
        if (refcounted) {
            st.growFile(host + runBytes);
        }
        long[] table = tables.table(l2Offset);
        try {
            if (inCluster > 0) {
                cow.copyPart(host, clusterStart, 0, inCluster, Qcow2CopyOnWrite.sourceFor(kind, below));
            }
            long end = inCluster + n;
            if (end < runBytes) {
                long lastStart = clusterStart + runBytes - clusterSize;
                int from = (int) (end - (runBytes - clusterSize));
                Kind lastKind = (table[index + count - 1] & ZERO_FLAG) != 0 ? Kind.ZERO_PLAIN : Kind.UNALLOCATED;
                cow.copyPart(host + runBytes - clusterSize, lastStart, from, clusterSize, Qcow2CopyOnWrite.sourceFor(lastKind, below));
            }
        } catch (IOException | RuntimeException e) {
            for (int k = 0; refcounted && k < count; k++) {
                st.refcounts.free(first + k);
            }
            throw e;
        }
        return new Qcow2Allocation(l2Offset, index, host | COPIED, refcounted ? first : -1, 0, count, null);
    }

    /** The one mapping of a write at {@code offset} into the {@code count} host clusters from {@code first}. */
    private Mapping.Data runMapping(long offset, long length, long first, int count) throws IOException {
        int inCluster = (int) (offset & (clusterSize - 1));
        long runBytes = (long) count << clusterBits;
        return new Mapping.Data(offset, Math.min(length, runBytes - inCluster), st.dataStorage(),
                (first << clusterBits) + inCluster);
    }
}
