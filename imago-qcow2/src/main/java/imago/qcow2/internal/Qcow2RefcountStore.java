package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * The refcounts of a writable image as they are stored: the refcount table and a write-back cache of refcount
 * blocks, with the two cursors the allocator moves (QEMU's free_cluster_index and free_byte_offset). Changes made
 * through {@link #put} stay in memory until {@link #writeDirty} (or eviction) writes them, which is always safe: an
 * increment on disk before its reference only leaks after a crash, and decrements are made only once the entries
 * that dropped the reference are on stable media. {@link #adjust} writes through instead. The table itself changes
 * only through {@link #writeTableEntry}, {@link #switchTable} and {@link #rewriteTable}, whose callers
 * ({@link Qcow2RefcountGrowth}, {@link Qcow2Refcounts}) order the writes. Not thread-safe: the caller holds the
 * instance's allocation lock.
 */
final class Qcow2RefcountStore {
    /** How many refcount blocks stay cached. */
    static final int MAX_CACHED_BLOCKS = 64;

    final Storage storage;
    final String resource;
    final int clusterBits;
    final int clusterSize;
    final int order;
    /** log2 of the clusters one refcount block counts. */
    final int blockBits;
    private long tableOffset;
    private long[] table;
    /** Refcount blocks by host offset, least recently used first; a dirty one is written before it is dropped. */
    private final LinkedHashMap<Long, Qcow2RefBlock> blocks = new LinkedHashMap<>(16, 0.75f, true);
    /** Host offsets of cached blocks changed since they were last written. */
    private final Set<Long> dirty = new HashSet<>();
    /** The refcount blocks' host offsets, for {@link #isBlock}; null after the table changed. */
    private Set<Long> blockSet;
    /**
     * Where first fit starts (QEMU's free_cluster_index): moved past each run handed out, lowered to a cluster
     * whose refcount drops to 0.
     */
    long freeHint;
    /**
     * Where the next compressed bytes may go, inside the cluster the last ones ended in (QEMU's free_byte_offset),
     * or 0: the next bytes start a new cluster. Forgotten when that cluster's refcount drops to 0, so that bytes are
     * never packed into a cluster that may have been handed out again.
     */
    long freeByteOffset;

    private Qcow2RefcountStore(Storage storage, int clusterBits, int order, long tableOffset, long[] table) {
        this.storage = storage;
        this.resource = storage.name();
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.order = order;
        this.blockBits = clusterBits + 3 - order;
        this.tableOffset = tableOffset;
        this.table = table;
    }

    /** Reads and validates the refcount table at {@code tableOffset}. */
    static Qcow2RefcountStore open(Storage storage, int clusterBits, int order, long tableOffset, int tableClusters,
            long fileSize) throws IOException {
        int cs = 1 << clusterBits;
        long entries = (long) tableClusters * cs / 8;
        long[] table = new long[(int) entries];
        ByteBuffer buf = ByteBuffer.allocate((int) entries * 8).order(ByteOrder.BIG_ENDIAN);
        storage.read(buf, tableOffset);
        buf.flip().asLongBuffer().get(table);
        for (int i = 0; i < table.length; i++) {
            long e = table[i];
            if ((e & 511) != 0 || (e & (cs - 1)) != 0 || e < 0 || (e != 0 && e + cs > fileSize)) {
                throw new CorruptImageException(storage.name(), tableOffset + i * 8L,
                        "refcount table entry " + i + " (0x" + Long.toHexString(e) + ") is invalid");
            }
        }
        return new Qcow2RefcountStore(storage, clusterBits, order, tableOffset, table);
    }

    /** The refcount block at host offset {@code offset}, read into the cache when it is not there. */
    Qcow2RefBlock block(long offset) throws IOException {
        Qcow2RefBlock b = blocks.get(offset);
        if (b == null) {
            byte[] bytes = new byte[clusterSize];
            storage.read(ByteBuffer.wrap(bytes), offset);
            b = new Qcow2RefBlock(bytes, order);
            cache(offset, b);
        }
        return b;
    }

    /** Caches a block, writing back and dropping the least recently used ones past the limit. */
    void cache(long offset, Qcow2RefBlock b) throws IOException {
        blocks.put(offset, b);
        var it = blocks.entrySet().iterator();
        while (blocks.size() > MAX_CACHED_BLOCKS) {
            var eldest = it.next();
            if (dirty.contains(eldest.getKey())) {
                storage.write(ByteBuffer.wrap(eldest.getValue().bytes()), eldest.getKey());
                dirty.remove(eldest.getKey());
            }
            it.remove();
        }
    }

    /** Syncs the storage after writing the cached refcount changes (safe to write at any time). */
    void sync() throws IOException {
        writeDirty();
        storage.sync();
    }

    /** Whether refcount changes wait in memory. */
    boolean hasDirty() {
        return !dirty.isEmpty();
    }

    /** Writes every changed refcount block (the caller syncs when the order requires it). */
    void writeDirty() throws IOException {
        for (var it = dirty.iterator(); it.hasNext(); ) {
            long offset = it.next();
            storage.write(ByteBuffer.wrap(blocks.get(offset).bytes()), offset);
            it.remove();
        }
    }

    /** The refcount of host cluster {@code cluster} (0 where no refblock covers it). */
    long get(long cluster) throws IOException {
        long index = cluster >>> blockBits;
        if (!covered(index)) {
            return 0;
        }
        return block(table[(int) index]).get((int) (cluster & ((1L << blockBits) - 1)));
    }

    /** Sets the refcount of a covered cluster, in the cache. */
    void put(long cluster, long value) throws IOException {
        long blockOffset = table[(int) (cluster >>> blockBits)];
        Qcow2RefBlock b = block(blockOffset);
        int i = (int) (cluster & ((1L << blockBits) - 1));
        b.set(i, value);
        dirty.add(blockOffset);
        if (value == 0) {
            forgetPacked(cluster);
        }
    }

    /** Stops packing compressed bytes into {@code cluster}, whose refcount dropped to 0. */
    private void forgetPacked(long cluster) {
        if (freeByteOffset != 0 && freeByteOffset >>> clusterBits == cluster) {
            freeByteOffset = 0;
        }
    }

    /** First fit may start at {@code cluster} again, whose refcount dropped to 0. */
    void freed(long cluster) {
        freeHint = Math.min(freeHint, cluster);
    }

    /** Whether refcount block {@code index} exists. */
    boolean covered(long index) {
        return index < table.length && table[(int) index] != 0;
    }

    /** How many entries the refcount table has. */
    int tableLength() {
        return table.length;
    }

    /** Host offset of refcount block {@code index} (0: none). */
    long blockOffset(long index) {
        return table[(int) index];
    }

    /**
     * Writes refcount table entry {@code index} (the block at {@code offset}) in place; the caller wrote and
     * synced the block first.
     */
    void writeTableEntry(long index, long offset) throws IOException {
        ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, offset);
        storage.write(e, tableOffset + index * 8);
        table[(int) index] = offset;
        blockSet = null;
    }

    /** Makes the table at {@code offset}, which the header now points at (synced), the refcount table. */
    void switchTable(long offset, long[] newTable) {
        tableOffset = offset;
        table = newTable;
        blockSet = null;
    }

    /**
     * Rewrites the table in place with {@code kept} (some blocks dropped), synced, and forgets the dropped blocks;
     * their clusters then have no refcount. Returns the old table.
     */
    long[] rewriteTable(long[] kept) throws IOException {
        ByteBuffer t = ByteBuffer.allocate(kept.length * 8).order(ByteOrder.BIG_ENDIAN);
        t.asLongBuffer().put(kept);
        storage.write(t, tableOffset);
        sync();
        long[] old = table;
        table = kept;
        blockSet = null;
        for (int i = 0; i < old.length; i++) {
            if (old[i] != kept[i]) {
                blocks.remove(old[i]);
                dirty.remove(old[i]);
            }
        }
        return old;
    }

    /** The last host cluster with a non-zero refcount below {@code endCluster}, or -1. */
    long lastUsed(long endCluster) throws IOException {
        for (long c = endCluster - 1; c >= 0; c--) {
            long index = c >>> blockBits;
            if (!covered(index)) {
                c = index << blockBits; // skip the block: nothing it would cover is counted
                continue;
            }
            if (get(c) != 0) {
                return c;
            }
        }
        return -1;
    }

    /**
     * The first cluster from which no cluster has a refcount: past every cluster in use, so that a run, refcount
     * blocks and a refcount table placed from there overlap nothing.
     */
    long endOfCounted() throws IOException {
        int last = table.length - 1;
        while (last >= 0 && table[last] == 0) {
            last--;
        }
        return lastUsed((long) (last + 1) << blockBits) + 1;
    }

    /**
     * The largest refcount this image's refcount width holds, as an unsigned value: 64-bit refcounts are unsigned
     * on disk, so their maximum is {@code 2^64 - 1} ({@code -1L}); compare refcounts with
     * {@link Long#compareUnsigned}.
     */
    long max() {
        return order == 6 ? -1L : (1L << (1 << order)) - 1;
    }

    /**
     * Checks that {@link #adjust adjusting} the refcounts of {@code sorted} by {@code delta} is possible: every
     * cluster is covered by a refcount block and has a non-zero refcount, and no refcount would leave
     * {@code [0, max()]}. Changes nothing.
     *
     * @param sorted host cluster indexes in ascending order; a cluster listed k times changes by k * delta
     * @throws CorruptImageException if a listed cluster has refcount 0 (it is referenced, so it is corrupt)
     * @throws ImageLimitException if a refcount would exceed the width's maximum
     */
    void checkAdjust(long[] sorted, int delta) throws IOException {
        long max = max();
        for (int i = 0; i < sorted.length; ) {
            long c = sorted[i];
            int j = i;
            while (j < sorted.length && sorted[j] == c) {
                j++;
            }
            long old = get(c);
            if (old == 0) {
                throw new CorruptImageException(resource, c << clusterBits, "host cluster " + c
                        + " is referenced but its refcount is 0");
            }
            long change = (long) (j - i) * delta;
            // unsigned: a 64-bit refcount may be anything up to 2^64 - 1
            if (change > 0 && (Long.compareUnsigned(change, max) > 0 || Long.compareUnsigned(old, max - change) > 0)) {
                throw new ImageLimitException(resource, c << clusterBits, "the refcount of host cluster " + c + " ("
                        + Long.toUnsignedString(old) + ") would exceed the maximum of " + (1 << order)
                        + "-bit refcounts (" + Long.toUnsignedString(max) + ")");
            }
            if (change < 0 && Long.compareUnsigned(old, -change) < 0) {
                throw new CorruptImageException(resource, c << clusterBits, "host cluster " + c + " has refcount "
                        + Long.toUnsignedString(old) + " but loses " + -change + " references");
            }
            i = j;
        }
    }

    /**
     * Adds {@code delta} to the refcount of each cluster of {@code sorted} (after {@link #checkAdjust}), writing
     * each refcount block it changes once, and returns the clusters whose refcount dropped to 0.
     *
     * @param sorted host cluster indexes in ascending order; a cluster listed k times changes by k * delta
     */
    List<Long> adjust(long[] sorted, int delta) throws IOException {
        checkAdjust(sorted, delta);
        List<Long> freed = new ArrayList<>();
        long blockIndex = -1;
        Qcow2RefBlock b = null;
        for (int i = 0; i < sorted.length; ) {
            long c = sorted[i];
            int j = i;
            while (j < sorted.length && sorted[j] == c) {
                j++;
            }
            long index = c >>> blockBits;
            if (index != blockIndex) {
                if (b != null) {
                    storage.write(ByteBuffer.wrap(b.bytes()), table[(int) blockIndex]);
                }
                blockIndex = index;
                b = block(table[(int) index]);
            }
            int k = (int) (c & ((1L << blockBits) - 1));
            long value = b.get(k) + (long) (j - i) * delta;
            b.set(k, value);
            if (value == 0) {
                freed.add(c);
                freed(c);
                forgetPacked(c);
            }
            i = j;
        }
        if (b != null) {
            storage.write(ByteBuffer.wrap(b.bytes()), table[(int) blockIndex]);
        }
        return freed;
    }

    /** Host offset of the refcount table. */
    long tableOffset() {
        return tableOffset;
    }

    /** Bytes of the refcount table. */
    long tableBytes() {
        return table.length * 8L;
    }

    /** Host offsets of the refcount blocks (0 for a missing one). */
    long[] blockOffsets() {
        return table.clone();
    }

    /** Whether the cluster at host offset {@code offset} is a refcount block. */
    boolean isBlock(long offset) {
        Set<Long> set = blockSet;
        if (set == null) {
            set = new HashSet<>();
            for (long b : table) {
                if (b != 0) {
                    set.add(b);
                }
            }
            blockSet = set;
        }
        return set.contains(offset);
    }
}
