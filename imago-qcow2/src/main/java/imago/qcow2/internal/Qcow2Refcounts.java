package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.util.List;

/**
 * The refcounts of a writable image and their first-fit cluster allocator: the front the rooms allocate, free and
 * count through, over the stored table and cached blocks ({@link Qcow2RefcountStore}) and the placement of new
 * refcount structures ({@link Qcow2RefcountGrowth}).
 *
 * <p>Crash safety: a cluster's refcount must be on stable media before any table entry that points
 * at it. Refcount blocks are cached write-back: changes stay in memory ({@link #writeDirty} writes
 * them) and the instance writes them, and syncs, before it writes the L2 tables that point at new
 * clusters. Writing a block early is always safe: an increment on disk before its reference only leaks
 * after a crash, and decrements are made only once the entries that dropped the reference are on stable
 * media. Clusters are handed out one by one, first fit, as QEMU's allocator hands them out, so that the
 * same writes on the same image put every cluster at the host offset qemu-img would; nothing is set
 * aside ahead of use (that would push later allocations further into the file). A new refcount block is
 * synced before the refcount table entry that points at it. Not thread-safe: the caller holds the
 * instance's allocation lock.
 *
 * <p>Where clusters go, as QEMU's qcow2_alloc_clusters, alloc_refcount_block and qcow2_refcount_area place them, so
 * that the same writes give qemu-img's host offsets and file size: the clusters of L2 tables and data (a run for a
 * write over empty clusters) are found first fit, clusters no refcount block covers counting as free; a block
 * missing for them then goes to the first free cluster after them, describing itself, or counted by the block of
 * its own range (made first, the same way); when its index is past the refcount table, the table grows (copy and
 * switch) as qcow2_refcount_area grows it: at the start of the next block's range the blocks it needs, then a table
 * with half again as many entries as needed, synced before the header points at it; the old table is free once the
 * header points at the new one (synced), so that the next clusters reuse it. The hint moves past each run as QEMU's
 * free_cluster_index does. A run of clusters (an L1 table, a snapshot table, an L1 copy) that reaches clusters no
 * refcount block covers, of any length, goes after every cluster in use, followed by the refcount blocks it needs
 * (each at the next cluster, the block counting it right after it) and, when their indexes are past the refcount
 * table, a larger table after them; the new blocks count the run, themselves and the new table. All of that is
 * written and synced before the header switches to the new table (synced), or before the new blocks' table entries
 * are written, each after the entry of the new block that counts it. Allocating does not grow the file: each
 * caller writes a new cluster (with extended L2 entries, the subclusters a write touches) before anything points
 * at it, which makes the file reach it (qemu-img check accepts a reference less than a cluster past the end of the
 * file, where QEMU's files end too). A rolled-back allocation returns the cluster to refcount 0 directly.
 *
 * <p>Compressed data is packed as QEMU's qcow2_alloc_bytes packs it: after the previous bytes while their cluster
 * has room, crossing into the next cluster when that is the first free one, else from the start of the first free
 * cluster (a new refcount block starts the bytes afresh after it); never into a cluster whose refcount dropped to 0
 * since. Each cluster the bytes touch gains a reference in the cached refcounts, which reach the disk, synced,
 * before the L2 entry that points at the bytes ({@link Qcow2CompressedWrites}), so a crash can only leak.
 */
final class Qcow2Refcounts {
    private final Qcow2RefcountStore store;
    private final Qcow2RefcountGrowth growth;
    private final int clusterBits;
    private final int clusterSize;
    private final int blockBits;

    private Qcow2Refcounts(Qcow2RefcountStore store) {
        this.store = store;
        this.growth = new Qcow2RefcountGrowth(store);
        this.clusterBits = store.clusterBits;
        this.clusterSize = store.clusterSize;
        this.blockBits = store.blockBits;
    }

    /** Reads and validates the refcount table of {@code header}. */
    static Qcow2Refcounts open(Storage storage, Qcow2Header header, long fileSize) throws IOException {
        return open(storage, header.clusterBits(), header.refcountOrder(), header.refcountTableOffset(),
                header.refcountTableClusters(), fileSize);
    }

    /** Reads and validates the refcount table at {@code tableOffset} (for an image being created). */
    static Qcow2Refcounts open(Storage storage, int clusterBits, int order, long tableOffset, int tableClusters,
            long fileSize) throws IOException {
        return new Qcow2Refcounts(Qcow2RefcountStore.open(storage, clusterBits, order, tableOffset, tableClusters,
                fileSize));
    }

    /** Syncs the storage after writing the cached refcount changes (safe to write at any time). */
    void sync() throws IOException {
        store.sync();
    }

    /** Whether refcount changes wait in memory. */
    boolean hasDirty() {
        return store.hasDirty();
    }

    /** Writes every changed refcount block (the caller syncs when the order requires it). */
    void writeDirty() throws IOException {
        store.writeDirty();
    }

    /** The refcount of host cluster {@code cluster} (0 where no refblock covers it). */
    long get(long cluster) throws IOException {
        return store.get(cluster);
    }

    // ------------------------------------------------------------ clusters

    /**
     * Returns a host cluster whose refcount is 1 (in the cache: {@link #writeDirty} writes it) and that
     * nothing points at yet. The file is not grown: the caller writes the cluster (with extended L2 entries,
     * the subclusters a write touches) before any table points at it, which makes the file reach it, as in
     * QEMU, whose file ends where the last write into its last cluster ends (qemu-img check accepts a
     * reference less than a cluster past the end of the file).
     *
     * @throws UnsupportedFeatureException if the refcount table would have to grow (nothing changed)
     */
    long allocate() throws IOException {
        return allocateClusters(1);
    }

    /**
     * Allocates {@code count} contiguous clusters as QEMU's qcow2_alloc_clusters does, so that the same requests
     * give the same host offsets: first fit from the hint, where clusters no refcount block covers count as free;
     * a refcount block missing for the run is then placed after it ({@link Qcow2RefcountGrowth#createBlockAfter})
     * and the search starts again from the same place, until every cluster of the run is covered. The refcounts
     * are set in the cache ({@link #writeDirty} writes them); the hint moves past the run.
     *
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed (nothing but new refcount blocks changed then)
     */
    long allocateClusters(int count) throws IOException {
        while (true) {
            long start = growth.firstFit(store.freeHint, count);
            growth.requireHostRoom(start + count);
            long missing = -1;
            for (long i = start >>> blockBits; i <= (start + count - 1) >>> blockBits && missing < 0; i++) {
                if (!store.covered(i)) {
                    missing = i;
                }
            }
            if (missing < 0) {
                for (long c = start; c < start + count; c++) {
                    store.put(c, 1);
                }
                store.freeHint = start + count;
                return start;
            }
            growth.createBlockAfter(missing, start + count);
        }
    }

    /**
     * {@link #allocateClusters} for a run of data clusters, or -1 when the refcount table cannot grow to cover
     * it (the caller then allocates cluster by cluster, and fails with the reason if even one does not fit).
     */
    long allocateDataRun(int count) throws IOException {
        try {
            return allocateClusters(count);
        } catch (UnsupportedFeatureException e) {
            return -1;
        }
    }

    /**
     * Allocates {@code count} contiguous clusters (first fit from the hint), sets their refcounts to 1 and
     * returns the first; the caller syncs before pointing at them. A run that would reach clusters no
     * refcount block covers yet goes {@link Qcow2RefcountGrowth#allocateAtEnd at the end}, followed by the
     * refcount blocks that cover it (any number of them), as QEMU places a table longer than a refcount block
     * covers.
     *
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed (nothing changed then)
     */
    long allocateRun(int count) throws IOException {
        long start = store.freeHint;
        search:
        while (true) {
            for (long c = start; c < start + count; c++) {
                if (!store.covered(c >>> blockBits)) {
                    return growth.allocateAtEnd(count, 0);
                }
                if (store.get(c) != 0) {
                    start = c + 1;
                    continue search;
                }
            }
            break;
        }
        return take(start, count);
    }

    /**
     * Allocates {@code count} contiguous clusters (first fit from the hint) where refcount blocks exist
     * already, setting their refcounts to 1, or returns -1 when there is no such run: creating blocks and
     * growing the table are left to {@link #allocate}.
     */
    long allocateExistingRun(int count) throws IOException {
        long start = store.freeHint;
        for (long c = start; c < start + count; c++) {
            if (!store.covered(c >>> blockBits)) {
                return -1;
            }
            if (store.get(c) != 0) {
                start = c + 1;
            }
        }
        return take(start, count);
    }

    /** Sets the refcounts of the free run at {@code start} to 1; the hint moves past it when it started there. */
    private long take(long start, int count) throws IOException {
        for (long c = start; c < start + count; c++) {
            store.put(c, 1);
        }
        if (start == store.freeHint) {
            store.freeHint = start + count;
        }
        return start;
    }

    /**
     * The longest run data writes and preallocation ask {@link #allocateRun} for: a quarter of what one refcount
     * block covers, so that their runs usually fill the holes of covered space first-fit (longer runs, such as
     * tables, are placed at the end with the refcount blocks they need).
     */
    int maxRun() {
        return (int) Math.max(1, Math.min(1 << 20, (1L << blockBits) / 4));
    }

    /**
     * Whether {@link #allocate} can return {@code count} clusters, growing the refcount table if it must (which
     * is refused only past QEMU's 8 MiB table limit or 2^56 bytes).
     */
    boolean canAllocate(int count) throws IOException {
        long c = store.freeHint;
        int found = 0;
        int tableLength = store.tableLength();
        while (found < count) {
            long index = c >>> blockBits;
            if (index >= tableLength) {
                // growing puts new blocks and the new table at the end, and then there is room for anything
                return (long) tableLength * 8 + clusterSize <= Qcow2Header.MAX_REFTABLE_BYTES
                        && c + count - found + 3L * (1L << blockBits) < (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits);
            }
            if (!store.covered(index)) {
                // a new refblock takes one of its own clusters
                found += (int) Math.min(Integer.MAX_VALUE, (1L << blockBits) - 1);
                c = (index + 1) << blockBits;
                continue;
            }
            if (store.get(c) == 0) {
                found++;
            }
            c++;
        }
        return true;
    }

    // ------------------------------------------------------------ packed bytes for compressed clusters

    /**
     * Hands out {@code length} bytes ({@code 0 < length < cluster size}) for compressed data, packed after
     * the previous ones as QEMU's qcow2_alloc_bytes packs them, so that the same writes give the same offsets:
     * in the cluster the previous bytes ended in while it has room (and its refcount is below the maximum),
     * crossing into the next cluster when that is the first free one, else from the start of the first free
     * cluster. Every cluster the bytes touch gains one reference, in the cache: the L2 entries that point at the
     * bytes reach the disk only after the refcounts and a sync (the write-back), so a crash can only leak.
     *
     * @return the host byte offset of the bytes
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed
     */
    long allocateBytes(int length) throws IOException {
        if (length <= 0 || length >= clusterSize) {
            throw new IllegalArgumentException("bad compressed length " + length);
        }
        long offset = store.freeByteOffset;
        if (offset != 0 && Long.compareUnsigned(store.get(offset >>> clusterBits), store.max()) >= 0) {
            // as QEMU: a cluster whose refcount is at its maximum takes no more bytes
            offset = 0;
        }
        long room = offset == 0 ? 0 : clusterSize - (offset & (clusterSize - 1));
        while (offset == 0 || room < length) {
            long c = growth.firstFit(store.freeHint, 1);
            growth.requireHostRoom(c + 1);
            if (!store.covered(c >>> blockBits)) {
                // as QEMU: the new refcount block goes after the cluster, and the bytes then start afresh in it
                growth.createBlockAfter(c >>> blockBits, c + 1);
                offset = 0;
                continue;
            }
            store.freeHint = c + 1;
            if (offset == 0 || ((offset >>> clusterBits) + 1) != c) {
                offset = c << clusterBits;
                room = clusterSize;
            } else {
                room += clusterSize;
            }
        }
        for (long k = offset >>> clusterBits; k <= (offset + length - 1) >>> clusterBits; k++) {
            store.put(k, store.get(k) + 1);
        }
        store.freeByteOffset = ((offset + length) & (clusterSize - 1)) == 0 ? 0 : offset + length;
        return offset;
    }

    /** Gives back bytes from {@link #allocateBytes} that no table entry points at (a failed write). */
    void freeBytes(long at, int length) throws IOException {
        for (long k = at >>> clusterBits; k <= (at + length - 1) >>> clusterBits; k++) {
            long left = store.get(k) - 1;
            store.put(k, left);
            if (left == 0) {
                store.freed(k);
            }
        }
    }

    // ------------------------------------------------------------ references dropped

    /** Drops the refcount of a cluster that lost one reference by one, and returns the new refcount. */
    long decrement(long cluster) throws IOException {
        long old = store.get(cluster);
        if (old == 0) {
            throw new CorruptImageException(store.resource, -1, "host cluster " + cluster + " lost a reference but "
                    + "its refcount is already 0");
        }
        store.put(cluster, old - 1);
        if (old == 1) {
            store.freed(cluster);
        }
        return old - 1;
    }

    /**
     * Takes back a cluster from {@link #allocate} that nothing points at (rolling back an allocation): its
     * refcount returns to 0 (a crash before that reaches the disk only leaks it) and first fit finds it again.
     */
    void free(long cluster) throws IOException {
        store.put(cluster, 0);
        store.freed(cluster);
    }

    /** Takes the clusters of replaced refcount tables: they lose their reference after the next sync. */
    List<Long> takeRetired() {
        return growth.takeRetired();
    }

    /**
     * As QEMU's qcow2_shrink_reftable: refcount blocks that count nothing but (possibly) themselves are
     * dropped from the refcount table, which is written and synced; their clusters then have no refcount
     * (0) without further writes.
     */
    void dropUnusedBlocks() throws IOException {
        long[] kept = store.blockOffsets();
        boolean changed = false;
        for (int i = 0; i < kept.length; i++) {
            long offset = kept[i];
            if (offset == 0) {
                continue;
            }
            Qcow2RefBlock b = store.block(offset);
            long self = offset >>> clusterBits;
            boolean unused = true;
            int entries = 1 << blockBits;
            for (int k = 0; k < entries && unused; k++) {
                long cluster = ((long) i << blockBits) + k;
                if (b.get(k) != 0 && cluster != self) {
                    unused = false;
                }
            }
            if (unused) {
                kept[i] = 0;
                changed = true;
            }
        }
        if (!changed) {
            return;
        }
        long[] dropped = store.rewriteTable(kept);
        for (int i = 0; i < dropped.length; i++) {
            if (dropped[i] != kept[i]) {
                store.freed((long) i << blockBits);
                long self = dropped[i] >>> clusterBits;
                if (self >>> blockBits != i && store.get(self) != 0) {
                    // a block stored in another block's range was counted there: that reference goes too
                    store.put(self, store.get(self) - 1);
                    store.freed(self);
                }
            }
        }
    }

    // ------------------------------------------------------------ many refcounts at once (snapshots)

    /** The largest refcount this image's refcount width holds, as an unsigned value (see {@link Qcow2RefcountStore#max}). */
    long max() {
        return store.max();
    }

    /**
     * Checks that {@link #adjust adjusting} the refcounts of {@code sorted} by {@code delta} is possible; changes
     * nothing.
     *
     * @throws CorruptImageException if a listed cluster has refcount 0 (it is referenced, so it is corrupt)
     * @throws ImageLimitException if a refcount would exceed the width's maximum
     * @see Qcow2RefcountStore#checkAdjust
     */
    void checkAdjust(long[] sorted, int delta) throws IOException {
        store.checkAdjust(sorted, delta);
    }

    /**
     * Adds {@code delta} to the refcount of each cluster of {@code sorted}, writing each refcount block it changes
     * once, and returns the clusters whose refcount dropped to 0 (see {@link Qcow2RefcountStore#adjust}).
     */
    List<Long> adjust(long[] sorted, int delta) throws IOException {
        return store.adjust(sorted, delta);
    }

    // ------------------------------------------------------------ where the structures are

    /** The last host cluster with a non-zero refcount below {@code endCluster}, or -1. */
    long lastUsed(long endCluster) throws IOException {
        return store.lastUsed(endCluster);
    }

    /** Host offset of the refcount table. */
    long tableOffset() {
        return store.tableOffset();
    }

    /** Bytes of the refcount table. */
    long tableBytes() {
        return store.tableBytes();
    }

    /** Host offsets of the refcount blocks (0 for a missing one). */
    long[] blockOffsets() {
        return store.blockOffsets();
    }

    /** Whether the cluster at host offset {@code offset} is a refcount block. */
    boolean isBlock(long offset) {
        return store.isBlock(offset);
    }
}
