package imago.qcow2.internal;

import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * Where new refcount structures go, as QEMU places them, so that the same writes give qemu-img's host offsets: a
 * refcount block missing for new clusters ({@link #createBlockAfter}, QEMU's alloc_refcount_block), a grown refcount
 * table ({@link #growTableFor}, qcow2_refcount_area) and a run of clusters past everything in use with the blocks
 * and table it needs ({@link #allocateAtEnd}). Each orders its writes so that a crash only leaks: a new block is
 * written with its refcount and synced before the table points at it; a new table and its blocks are synced before
 * the header switches to it (synced), and the old table is freed only after that. Not thread-safe: the caller holds
 * the instance's allocation lock.
 */
final class Qcow2RefcountGrowth {
    private final Qcow2RefcountStore store;
    private final Storage storage;
    private final String resource;
    private final int clusterBits;
    private final int clusterSize;
    private final int blockBits;
    /** Clusters of replaced refcount tables, to lose their reference after the next sync. */
    private final List<Long> retired = new ArrayList<>();

    Qcow2RefcountGrowth(Qcow2RefcountStore store) {
        this.store = store;
        this.storage = store.storage;
        this.resource = store.resource;
        this.clusterBits = store.clusterBits;
        this.clusterSize = store.clusterSize;
        this.blockBits = store.blockBits;
    }

    /** Refuses clusters up to {@code endCluster} (exclusive) that would lie past QEMU's 2^56 host bytes. */
    void requireHostRoom(long endCluster) throws UnsupportedFeatureException {
        if (endCluster > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets",
                    "host offsets past 2^56");
        }
    }

    /**
     * The first cluster from {@code from} on that starts {@code count} clusters with refcount 0 (clusters no
     * refcount block covers have none), as QEMU's alloc_clusters_noref finds it.
     */
    long firstFit(long from, int count) throws IOException {
        long start = from;
        long c = from;
        long mask = (1L << blockBits) - 1;
        while (c < start + count) {
            long index = c >>> blockBits;
            long rangeEnd = (index + 1) << blockBits;
            if (!store.covered(index)) {
                c = rangeEnd;
                continue;
            }
            Qcow2RefBlock b = store.block(store.blockOffset(index));
            for (; c < rangeEnd && c < start + count; c++) {
                if (b.get((int) (c & mask)) != 0) {
                    start = c + 1;
                }
            }
        }
        return start;
    }

    /**
     * Creates the missing refcount block {@code index} as QEMU's alloc_refcount_block does: at the first free
     * cluster from {@code from} (the end of the run that needs it). When that cluster is in the block's own range
     * the block describes itself; else the block of that cluster's range counts it (created first, the same way,
     * when it is missing too). The new block is written and synced, with its refcount, before the refcount table
     * points at it; when its index is past the table, the table grows ({@link #growTableFor}).
     */
    void createBlockAfter(long index, long from) throws IOException {
        long at = firstFit(from, 1);
        long atIndex = at >>> blockBits;
        requireHostRoom(at + 1);
        Qcow2RefBlock nb = new Qcow2RefBlock(new byte[clusterSize], store.order);
        if (atIndex == index) {
            nb.set((int) (at & ((1L << blockBits) - 1)), 1);
            if (index >= store.tableLength()) {
                growTableFor(index, at, nb);
                return;
            }
        } else {
            if (!store.covered(atIndex)) {
                createBlockAfter(atIndex, at + 1);
            }
            store.put(at, 1);
        }
        long offset = at << clusterBits;
        storage.write(ByteBuffer.wrap(nb.bytes()), offset);
        // the new block and the refcount of its cluster are on stable media before the table points at it
        store.sync();
        store.writeTableEntry(index, offset);
        store.cache(offset, nb);
    }

    /**
     * Grows the refcount table for the new block {@code index} at cluster {@code at} (which it describes), as QEMU's
     * alloc_refcount_block does with qcow2_refcount_area: from the first cluster of the next block's range come the
     * refcount blocks that the new structures need, then a table with half again as many entries as blocks cover the
     * image and them, rounded up to whole clusters; the new blocks count themselves and the table. Everything is
     * written and synced before the header points at the new table (synced too); the old table's clusters are then
     * free at once, as in QEMU (nothing on the disk points at them any more).
     */
    private void growTableFor(long index, long at, Qcow2RefBlock block) throws IOException {
        long meta = (index + 1) << blockBits;
        long total = refblocksFor(meta);
        long entries = total + (total + 1) / 2;
        long perCluster = clusterSize / 8;
        entries = (entries + perCluster - 1) / perCluster * perCluster;
        long tableClusters = entries / perCluster;
        if (entries * 8 > Qcow2Header.MAX_REFTABLE_BYTES || entries > Integer.MAX_VALUE) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                    "the refcount table would need " + entries * 8 + " bytes, past QEMU's limit of "
                    + Qcow2Header.MAX_REFTABLE_BYTES);
        }
        long areaIndex = meta >>> blockBits;
        long tableAt = meta + Math.max(0, total - areaIndex);
        long end = tableAt + tableClusters;
        requireHostRoom(end);
        long[] oldTable = store.blockOffsets();
        long[] newTable = Arrays.copyOf(oldTable, (int) entries);
        newTable[(int) index] = at << clusterBits;
        LinkedHashMap<Long, Qcow2RefBlock> created = new LinkedHashMap<>();
        created.put(at << clusterBits, block);
        long mask = (1L << blockBits) - 1;
        for (long i = areaIndex; i < total; i++) {
            Qcow2RefBlock nb = new Qcow2RefBlock(new byte[clusterSize], store.order);
            long offset = (meta + i - areaIndex) << clusterBits;
            newTable[(int) i] = offset;
            for (long c = Math.max(meta, i << blockBits); c < Math.min(end, (i + 1) << blockBits); c++) {
                nb.set((int) (c & mask), 1);
            }
            created.put(offset, nb);
        }
        for (var e : created.entrySet()) {
            storage.write(ByteBuffer.wrap(e.getValue().bytes()), e.getKey());
        }
        ByteBuffer t = ByteBuffer.allocate((int) (tableClusters * clusterSize)).order(ByteOrder.BIG_ENDIAN);
        t.asLongBuffer().put(newTable);
        storage.write(t, tableAt << clusterBits);
        store.sync();
        Qcow2HeaderFields.writeRefcountTable(storage, tableAt << clusterBits, (int) tableClusters);
        store.sync();
        long oldFirst = store.tableOffset() >>> clusterBits;
        long oldClusters = (long) oldTable.length * 8 / clusterSize;
        store.switchTable(tableAt << clusterBits, newTable);
        for (var e : created.entrySet()) {
            store.cache(e.getKey(), e.getValue());
        }
        for (long c = oldFirst; c < oldFirst + oldClusters; c++) {
            store.put(c, store.get(c) - 1);
            if (store.get(c) == 0) {
                store.freed(c);
            }
        }
    }

    /**
     * How many refcount blocks cover {@code clusters} clusters and the refcount structures themselves, with room
     * for the table to be half again as large (QEMU's qcow2_refcount_metadata_size, generous).
     */
    private long refblocksFor(long clusters) {
        long perTableCluster = clusterSize / 8;
        long perBlock = 1L << blockBits;
        long tableClusters = 0;
        long blocks = 0;
        long n = 0;
        long last;
        boolean generous = true;
        do {
            last = n;
            blocks = (clusters + tableClusters + blocks + perBlock - 1) / perBlock;
            tableClusters = (blocks + perTableCluster - 1) / perTableCluster;
            n = clusters + blocks + tableClusters;
            if (n == last && generous) {
                clusters += (tableClusters + 1) / 2;
                n = 0;
                generous = false;
            }
        } while (n != last);
        return blocks;
    }

    /**
     * Allocates {@code count} contiguous clusters (possibly none) from {@link Qcow2RefcountStore#endOfCounted} with
     * refcount 1, as QEMU's alloc_refcount_block and qcow2_refcount_area do for areas no refcount block covers: the
     * missing refcount blocks come right after the run and, when their indexes are past the refcount table or the
     * table must have at least {@code minEntries} entries, a larger table right after them; the new blocks count the
     * run, themselves and the new table. Crash-safe ordering: the new blocks (and the changed existing ones) and
     * the new table are written and synced before the header points at the new table (synced too), or before
     * the table entries of the new blocks are written; the old table's clusters are {@link #takeRetired
     * retired}, to be freed only after the switch. A crash before the switch leaves only clusters nothing
     * counts; after it, only leaks.
     *
     * @return the first cluster of the run (where it would start when {@code count} is 0)
     * @throws UnsupportedFeatureException if the table would grow past QEMU's 8 MiB limit or the clusters past
     *         2^56 bytes; nothing changed then
     */
    long allocateAtEnd(int count, long minEntries) throws IOException {
        long top = store.endOfCounted();
        long runEnd = top + count;
        long[] table = store.blockOffsets();
        long oldClusters = (long) table.length * 8 / clusterSize;
        long maxClusters = Qcow2Header.MAX_REFTABLE_BYTES / clusterSize;
        long blocks = 0;
        long tableClusters = 0;
        // the new blocks and the new table count themselves too: grow the estimates until they cover it all
        while (true) {
            long end = runEnd + blocks + tableClusters;
            requireHostRoom(end);
            long lastIndex = (end - 1) >>> blockBits;
            long missing = 0;
            for (long i = top >>> blockBits; i <= lastIndex && end > top; i++) {
                if (i >= table.length || table[(int) i] == 0) {
                    missing++;
                }
            }
            long entries = Math.max(end > top ? lastIndex + 1 : 0, minEntries);
            long needTable = 0;
            if (entries > table.length) {
                long needed = Qcow2Checks.divCeil(entries * 8, clusterSize);
                if (needed > maxClusters) {
                    throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth", "the refcount "
                            + "table would need " + needed * clusterSize + " bytes, past QEMU's limit of "
                            + Qcow2Header.MAX_REFTABLE_BYTES);
                }
                // doubling, so that growing stays rare
                needTable = Math.max(needed, Math.min(2 * oldClusters, maxClusters));
            }
            if (missing <= blocks && needTable <= tableClusters) {
                break;
            }
            blocks = Math.max(blocks, missing);
            tableClusters = Math.max(tableClusters, needTable);
        }
        long end = runEnd + blocks + tableClusters;
        long[] newTable = tableClusters > 0 ? Arrays.copyOf(table, (int) (tableClusters * clusterSize / 8))
                : table.clone();
        LinkedHashMap<Long, Qcow2RefBlock> created = new LinkedHashMap<>();
        long next = runEnd;
        for (long i = top >>> blockBits; end > top && i <= (end - 1) >>> blockBits; i++) {
            // as QEMU's alloc_refcount_block: each new block takes the next free cluster, and when another missing
            // block covers that cluster, that block comes right after it (and so on until one describes itself)
            for (long j = i; (j >= table.length || table[(int) j] == 0) && !created.containsKey(j); ) {
                created.put(j, new Qcow2RefBlock(new byte[clusterSize], store.order));
                long at = next++;
                newTable[(int) j] = at << clusterBits;
                j = at >>> blockBits;
            }
        }
        if (next != runEnd + blocks) {
            throw new IllegalStateException(resource + ": refcount block estimate " + blocks + " for "
                    + (next - runEnd) + " blocks");
        }
        long mask = (1L << blockBits) - 1;
        for (long c = top; c < end; c++) {
            Qcow2RefBlock nb = created.get(c >>> blockBits);
            if (nb != null) {
                nb.set((int) (c & mask), 1);
            }
        }
        for (var e : created.entrySet()) {
            storage.write(ByteBuffer.wrap(e.getValue().bytes()), newTable[(int) (long) e.getKey()]);
        }
        // clusters of the range that existing blocks cover: in the cache, written by the sync below
        for (long c = top; c < end; c++) {
            if (!created.containsKey(c >>> blockBits)) {
                store.put(c, 1);
            }
        }
        if (tableClusters > 0) {
            long newOffset = (runEnd + blocks) << clusterBits;
            ByteBuffer t = ByteBuffer.allocate((int) (tableClusters * clusterSize)).order(ByteOrder.BIG_ENDIAN);
            t.asLongBuffer().put(newTable);
            storage.write(t, newOffset);
            store.sync();
            Qcow2HeaderFields.writeRefcountTable(storage, newOffset, (int) tableClusters);
            store.sync();
            for (long c = 0; c < oldClusters; c++) {
                retired.add((store.tableOffset() >>> clusterBits) + c);
            }
            store.switchTable(newOffset, newTable);
        } else {
            store.sync();
            for (long i : created.keySet()) {
                writeEntry(i, newTable, created.keySet());
            }
        }
        for (var e : created.entrySet()) {
            store.cache(newTable[(int) (long) e.getKey()], e.getValue());
        }
        return top;
    }

    /**
     * Writes the refcount table entry of the new block {@code i}, after that of the new block that counts it (if
     * another new one does), so that no crash in between leaves a block in the table whose own refcount no block
     * in the table holds.
     */
    private void writeEntry(long i, long[] newTable, Set<Long> created) throws IOException {
        if (store.covered(i)) {
            return;
        }
        long describer = newTable[(int) i] >>> clusterBits >>> blockBits;
        if (describer != i && created.contains(describer)) {
            writeEntry(describer, newTable, created);
        }
        store.writeTableEntry(i, newTable[(int) i]);
    }

    /** Takes the clusters of replaced refcount tables: they lose their reference after the next sync. */
    List<Long> takeRetired() {
        List<Long> out = List.copyOf(retired);
        retired.clear();
        return out;
    }
}
