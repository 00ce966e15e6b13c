package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Entries.COMPRESSED;
import static imago.qcow2.internal.Qcow2Entries.COPIED;
import static imago.qcow2.internal.Qcow2Entries.OFFSET_MASK;

import imago.api.spi.Storage;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The L2 tables of the active image and what waits to be written of them: tables in a {@link Qcow2L2Cache},
 * changed entries in dirty tables (written back by {@link Qcow2WriteBack}), L1 entries of new tables, and the
 * host clusters that lost a reference and get their refcount dropped on the next flush. New and copied tables
 * are written at once; their L1 entries wait. Everything that changes here changes under the allocation lock.
 */
final class Qcow2Tables extends Qcow2Room {
    /** Ordered stores of L2 words, so that lock-free readers never see an impossible entry/bitmap pair. */
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final Qcow2L2Cache cache;
    /**
     * L2 tables changed in memory and not written yet, by host offset; the loader serves them, so that evicting
     * one from the cache loses nothing. Written by {@link Qcow2WriteBack} after the refcounts and the data they
     * point at are on stable media.
     */
    private final ConcurrentHashMap<Long, long[]> dirtyL2 = new ConcurrentHashMap<>();
    /**
     * L1 entries that point at new L2 tables (allocated or copied) but are not written yet: written by
     * {@link Qcow2WriteBack} after the tables, with a sync in between.
     */
    private final BitSet dirtyL1 = new BitSet();
    /** At most this many dirty L2 tables wait in memory (32 MiB worth, at least one). */
    private final int maxDirtyL2;
    /**
     * Host clusters that lost a reference (unmapped by zeroing or discard, a compressed or shared cluster
     * rewritten, a table copied or moved): their refcounts drop on the next flush, after a sync.
     */
    private final List<Long> pendingDecrefs = new ArrayList<>();
    /** Writes the dirty tables back when too many wait ({@link Qcow2WriteBack#writeBack}). */
    private Qcow2Action writeBack = () -> { };

    Qcow2Tables(Qcow2State st, int cacheTables) {
        super(st);
        this.cache = new Qcow2L2Cache(cacheTables);
        this.maxDirtyL2 = Math.max(1, (32 << 20) / clusterSize);
    }

    /** Sets what writes the dirty tables back when more than {@code maxDirtyL2} wait. */
    void writeBackWith(Qcow2Action action) {
        this.writeBack = action;
    }

    Qcow2L2Cache cache() {
        return cache;
    }

    /** The L2 table at {@code l2Offset}, from the cache (lock-free on a hit) or read. */
    long[] table(long l2Offset) throws IOException {
        return cache.get(l2Offset, this::loadL2);
    }

    /** The dirty L2 tables by host offset, for {@link Qcow2WriteBack}. */
    Map<Long, long[]> dirtyL2() {
        return dirtyL2;
    }

    /** The L1 entries waiting to be written, for {@link Qcow2WriteBack}. */
    BitSet dirtyL1() {
        return dirtyL1;
    }

    /** The host clusters whose refcounts drop on the next flush. */
    List<Long> pendingDecrefs() {
        return pendingDecrefs;
    }

    /** Queues the refcount drop of host cluster {@code cluster} for the next flush. */
    void decrefLater(long cluster) {
        pendingDecrefs.add(cluster);
    }

    /**
     * Points the L2 entries of a written allocation at its clusters (in memory; on disk only after the data,
     * copied parts included, and the refcounts are on stable media, as QEMU's perform_cow and cache
     * dependencies order them); the entries they replace lose their references on the next flush.
     */
    void link(Qcow2Allocation a) throws IOException {
        for (int k = 0; k < a.count(); k++) {
            if (st.geometry.extendedL2()) {
                setExtendedL2Entry(a.l2Offset(), a.index() + k, a.entry() + ((long) k << clusterBits),
                        a.bitmaps()[k]);
            } else {
                setL2Entry(a.l2Offset(), a.index() + k, a.entry() + ((long) k << clusterBits));
            }
        }
        dropReference(a.replaced());
    }

    /** Completes an allocating write: links it if its data was {@code written}, else gives it back. */
    void settle(Qcow2Allocation a, boolean written) throws IOException {
        if (written) {
            link(a);
        } else {
            giveBack(a);
        }
    }

    /** Gives back the clusters of an allocation whose data was not written. */
    void giveBack(Qcow2Allocation a) throws IOException {
        if (a.allocated() >= 0) {
            for (int k = 0; k < a.count(); k++) {
                st.refcounts.free(a.allocated() + k);
            }
        }
    }

    long[] loadL2(long l2Offset) throws IOException {
        long[] dirty = dirtyL2.get(l2Offset);
        if (dirty != null) {
            return dirty;
        }
        int words = clusterSize / 8;
        long[] table = new long[words];
        ByteBuffer buf = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
        storage.read(buf, l2Offset);
        buf.flip().asLongBuffer().get(table);
        return table;
    }

    /** Changes one L2 entry in memory; the table is written back later. Under the allocation lock. */
    void setL2Entry(long l2Offset, int index, long entry) throws IOException {
        long[] table = table(l2Offset);
        table[index] = entry;
        dirtyL2.put(l2Offset, table);
        if (dirtyL2.size() > maxDirtyL2) {
            writeBack.run();
        }
    }

    /**
     * Changes extended L2 entry {@code index} (table words 2·index and 2·index + 1) in memory, as
     * {@link #setL2Entry}. The words are stored in the order that shows a lock-free reader in between either
     * the old contents or reads the new ones allow: the entry first when it gains a host cluster (its new
     * allocated bits need it), the bitmap first otherwise (allocated bits must be gone before the host is,
     * and a compressed entry ignores its bitmap). Under allocLock.
     */
    void setExtendedL2Entry(long l2Offset, int index, long entry, long bitmap) throws IOException {
        long[] table = table(l2Offset);
        // (a data file cluster is mapped by COPIED, even at host offset 0)
        boolean mapped = (entry & OFFSET_MASK) != 0 || st.header.hasDataFile() && (entry & COPIED) != 0;
        boolean entryFirst = (table[2 * index] & COMPRESSED) == 0 && mapped;
        if (entryFirst) {
            WORDS.setRelease(table, 2 * index, entry);
            WORDS.setRelease(table, 2 * index + 1, bitmap);
        } else {
            WORDS.setRelease(table, 2 * index + 1, bitmap);
            WORDS.setRelease(table, 2 * index, entry);
        }
        dirtyL2.put(l2Offset, table);
        if (dirtyL2.size() > maxDirtyL2) {
            writeBack.run();
        }
    }

    /**
     * Allocates a zeroed L2 table for L1 entry {@code l1Index}: refcounted and written before the L1
     * entry points at it.
     */
    long allocateL2(int l1Index) throws IOException {
        long l2 = writeNewTable(ByteBuffer.allocate(clusterSize));
        // the L1 entry reaches the disk in writeBack, after the empty table and its refcount are synced
        st.l1[l1Index] = l2 | COPIED;
        dirtyL1.set(l1Index);
        return l2;
    }

    /**
     * Copies the L2 table of L1 entry {@code l1Index}, which is shared with a snapshot, to a new cluster:
     * synced before the L1 entry points at it; the old table loses the active image's reference on the next
     * flush. The entries keep their flags: the data clusters stay shared.
     */
    long copyL2(int l1Index, long oldL2) throws IOException {
        long[] table = table(oldL2).clone();
        ByteBuffer b = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
        b.asLongBuffer().put(table);
        long l2 = writeNewTable(b);
        // the L1 entry reaches the disk in writeBack, after the copy and its refcount are synced; the old
        // table loses the active image's reference only after that
        st.l1[l1Index] = l2 | COPIED;
        dirtyL1.set(l1Index);
        pendingDecrefs.add(oldL2 >>> clusterBits);
        return l2;
    }

    /** Writes one cluster of table {@code b} into a new cluster (refcounted first) and returns its offset. */
    private long writeNewTable(ByteBuffer b) throws IOException {
        long c = st.refcounts.allocate();
        long at = c << clusterBits;
        try {
            storage.write(b, at);
            st.growFile(at + clusterSize);
        } catch (IOException | RuntimeException e) {
            st.refcounts.free(c);
            throw e;
        }
        return at;
    }

    /** Queues the refcount drops for the clusters an L2 entry that was just replaced referenced. */
    void dropReference(long entry) {
        if ((entry & COMPRESSED) != 0) {
            Qcow2Entries.compressedClusters(entry, clusterBits, pendingDecrefs);
        } else if ((entry & OFFSET_MASK) != 0) {
            pendingDecrefs.add((entry & OFFSET_MASK) >>> clusterBits);
        }
    }

    /** Discards clusters whose refcount dropped to 0 and forgets them as L2 tables. */
    void freeClusters(List<Long> freed) throws IOException {
        for (long c : freed) {
            storage.discard(c << clusterBits, clusterSize);
            cache.invalidate(c << clusterBits);
        }
    }

    void writeTable(long[] table, long offset) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(table.length * 8).order(ByteOrder.BIG_ENDIAN);
        b.asLongBuffer().put(table);
        storage.write(b, offset);
    }

    static long[] readTable(Storage storage, long offset, int entries) throws IOException {
        long[] out = new long[entries];
        int chunk = 1 << 16;
        ByteBuffer buf = ByteBuffer.allocate(Math.min(entries, chunk) * 8).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < entries; i += chunk) {
            int n = Math.min(chunk, entries - i);
            buf.clear().limit(n * 8);
            storage.read(buf, offset + i * 8L);
            buf.flip().asLongBuffer().get(out, i, n);
        }
        return out;
    }

}
