package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * The refcount table and refcount blocks of a writable image, with a first-fit cluster allocator.
 * Every change is written through to the storage at once.
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
 */
final class Qcow2Refcounts {

    /**
     * One refcount block: {@code 1 << order}-bit big-endian entries; widths below 8 bits are packed
     * from the low bit of each byte.
     */
    record Block(byte[] bytes, int order) {
        long get(int i) {
            if (order < 3) {
                int bits = 1 << order;
                int perByte = 8 / bits;
                int shift = (i % perByte) * bits;
                return ((bytes[i / perByte] & 0xFF) >>> shift) & ((1 << bits) - 1);
            }
            int n = 1 << (order - 3);
            long v = 0;
            for (int k = 0; k < n; k++) {
                v = (v << 8) | (bytes[i * n + k] & 0xFF);
            }
            return v;
        }

        void set(int i, long value) {
            if (order < 3) {
                int bits = 1 << order;
                int perByte = 8 / bits;
                int shift = (i % perByte) * bits;
                int mask = ((1 << bits) - 1) << shift;
                int b = i / perByte;
                bytes[b] = (byte) ((bytes[b] & ~mask) | (((int) value << shift) & mask));
                return;
            }
            int n = 1 << (order - 3);
            for (int k = n - 1; k >= 0; k--) {
                bytes[i * n + k] = (byte) value;
                value >>>= 8;
            }
        }

        /** The first byte of the bytes holding entry {@code i}. */
        int byteOffset(int i) {
            return order < 3 ? i / (8 >> order) : i << (order - 3);
        }

        /** How many bytes hold one entry (one byte for sub-byte widths). */
        int byteLength() {
            return order < 3 ? 1 : 1 << (order - 3);
        }
    }

    private final Storage storage;
    private final String resource;
    private final int clusterBits;
    private final int clusterSize;
    private final int order;
    private final int blockBits;
    private long tableOffset;
    private long[] table;
    /** Clusters of replaced refcount tables, to lose their reference after the next sync. */
    private final List<Long> retired = new ArrayList<>();
    /** Refcount blocks by host offset, least recently used first; a dirty one is written before it is dropped. */
    private final LinkedHashMap<Long, Block> blocks = new LinkedHashMap<>(16, 0.75f, true);
    /** Host offsets of cached blocks changed since they were last written. */
    private final Set<Long> dirty = new HashSet<>();

    /** How many refcount blocks stay cached. */
    static final int MAX_CACHED_BLOCKS = 64;
    private long freeHint;

    private Qcow2Refcounts(Storage storage, int clusterBits, int order, long tableOffset, long[] table) {
        this.storage = storage;
        this.resource = storage.name();
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.order = order;
        this.blockBits = clusterBits + 3 - order;
        this.tableOffset = tableOffset;
        this.table = table;
    }

    /** Reads and validates the refcount table of {@code header}. */
    static Qcow2Refcounts open(Storage storage, Qcow2Header header, long fileSize) throws IOException {
        return open(storage, header.clusterBits(), header.refcountOrder(), header.refcountTableOffset(),
                header.refcountTableClusters(), fileSize);
    }

    /** Reads and validates the refcount table at {@code tableOffset} (for an image being created). */
    static Qcow2Refcounts open(Storage storage, int clusterBits, int order, long tableOffset, int tableClusters,
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
        return new Qcow2Refcounts(storage, clusterBits, order, tableOffset, table);
    }

    private Block block(long offset) throws IOException {
        Block b = blocks.get(offset);
        if (b == null) {
            byte[] bytes = new byte[clusterSize];
            storage.read(ByteBuffer.wrap(bytes), offset);
            b = new Block(bytes, order);
            cache(offset, b);
        }
        return b;
    }

    /** Caches a block, writing back and dropping the least recently used ones past the limit. */
    private void cache(long offset, Block b) throws IOException {
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
        if (index >= table.length || table[(int) index] == 0) {
            return 0;
        }
        return block(table[(int) index]).get((int) (cluster & ((1L << blockBits) - 1)));
    }

    private void put(long cluster, long value) throws IOException {
        long blockOffset = table[(int) (cluster >>> blockBits)];
        Block b = block(blockOffset);
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
     * a refcount block missing for the run is then placed after it ({@link #createBlockAfter}) and the search
     * starts again from the same place, until every cluster of the run is covered. The refcounts are set in the
     * cache ({@link #writeDirty} writes them); the hint moves past the run.
     *
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed (nothing but new refcount blocks changed then)
     */
    long allocateClusters(int count) throws IOException {
        while (true) {
            long start = firstFit(freeHint, count);
            if (start + count > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets",
                        "host offsets past 2^56");
            }
            long missing = -1;
            for (long i = start >>> blockBits; i <= (start + count - 1) >>> blockBits && missing < 0; i++) {
                if (!covered(i)) {
                    missing = i;
                }
            }
            if (missing < 0) {
                for (long c = start; c < start + count; c++) {
                    put(c, 1);
                }
                freeHint = start + count;
                return start;
            }
            createBlockAfter(missing, start + count);
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

    /** Whether refcount block {@code index} exists. */
    private boolean covered(long index) {
        return index < table.length && table[(int) index] != 0;
    }

    /**
     * The first cluster from {@code from} on that starts {@code count} clusters with refcount 0 (clusters no
     * refcount block covers have none), as QEMU's alloc_clusters_noref finds it.
     */
    private long firstFit(long from, int count) throws IOException {
        long start = from;
        long c = from;
        long mask = (1L << blockBits) - 1;
        while (c < start + count) {
            long index = c >>> blockBits;
            long rangeEnd = (index + 1) << blockBits;
            if (!covered(index)) {
                c = rangeEnd;
                continue;
            }
            Block b = block(table[(int) index]);
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
    private void createBlockAfter(long index, long from) throws IOException {
        long at = firstFit(from, 1);
        long atIndex = at >>> blockBits;
        if (at + 1 > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets",
                    "host offsets past 2^56");
        }
        Block nb = new Block(new byte[clusterSize], order);
        if (atIndex == index) {
            nb.set((int) (at & ((1L << blockBits) - 1)), 1);
            if (index >= table.length) {
                growTableFor(index, at, nb);
                return;
            }
        } else {
            if (!covered(atIndex)) {
                createBlockAfter(atIndex, at + 1);
            }
            put(at, 1);
        }
        long offset = at << clusterBits;
        storage.write(ByteBuffer.wrap(nb.bytes()), offset);
        // the new block and the refcount of its cluster are on stable media before the table points at it
        sync();
        ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, offset);
        storage.write(e, tableOffset + index * 8);
        table[(int) index] = offset;
        blockSet = null;
        cache(offset, nb);
    }

    /**
     * Grows the refcount table for the new block {@code index} at cluster {@code at} (which it describes), as QEMU's
     * alloc_refcount_block does with qcow2_refcount_area: from the first cluster of the next block's range come the
     * refcount blocks that the new structures need, then a table with half again as many entries as blocks cover the
     * image and them, rounded up to whole clusters; the new blocks count themselves and the table. Everything is
     * written and synced before the header points at the new table (synced too); the old table's clusters are then
     * free at once, as in QEMU (nothing on the disk points at them any more).
     */
    private void growTableFor(long index, long at, Block block) throws IOException {
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
        if (end > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets",
                    "host offsets past 2^56");
        }
        long[] newTable = Arrays.copyOf(table, (int) entries);
        newTable[(int) index] = at << clusterBits;
        LinkedHashMap<Long, Block> created = new LinkedHashMap<>();
        created.put(at << clusterBits, block);
        long mask = (1L << blockBits) - 1;
        for (long i = areaIndex; i < total; i++) {
            Block nb = new Block(new byte[clusterSize], order);
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
        sync();
        ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putLong(0, tableAt << clusterBits)
                .putInt(8, (int) tableClusters);
        storage.write(h, 48);
        sync();
        long oldFirst = tableOffset >>> clusterBits;
        long oldClusters = (long) table.length * 8 / clusterSize;
        tableOffset = tableAt << clusterBits;
        table = newTable;
        blockSet = null;
        for (var e : created.entrySet()) {
            cache(e.getKey(), e.getValue());
        }
        for (long c = oldFirst; c < oldFirst + oldClusters; c++) {
            put(c, get(c) - 1);
            if (get(c) == 0) {
                freeHint = Math.min(freeHint, c);
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
     * Allocates {@code count} contiguous clusters (first fit from the hint), sets their refcounts to 1 and
     * returns the first; the caller syncs before pointing at them. A run that would reach clusters no
     * refcount block covers yet goes {@link #allocateAtEnd at the end}, followed by the refcount blocks that
     * cover it (any number of them), as QEMU places a table longer than a refcount block covers.
     *
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed (nothing changed then)
     */
    long allocateRun(int count) throws IOException {
        long start = freeHint;
        search:
        while (true) {
            for (long c = start; c < start + count; c++) {
                long index = c >>> blockBits;
                if (index >= table.length || table[(int) index] == 0) {
                    return allocateAtEnd(count, 0);
                }
                if (get(c) != 0) {
                    start = c + 1;
                    continue search;
                }
            }
            break;
        }
        for (long c = start; c < start + count; c++) {
            put(c, 1);
        }
        if (start == freeHint) {
            freeHint = start + count;
        }
        return start;
    }

    /**
     * The first cluster from which no cluster has a refcount: past every cluster in use, so that a run, refcount
     * blocks and a refcount table placed from there overlap nothing.
     */
    private long endOfCounted() throws IOException {
        int last = table.length - 1;
        while (last >= 0 && table[last] == 0) {
            last--;
        }
        return lastUsed((long) (last + 1) << blockBits) + 1;
    }

    /**
     * Allocates {@code count} contiguous clusters (possibly none) from {@link #endOfCounted} with refcount 1, as
     * QEMU's alloc_refcount_block and qcow2_refcount_area do for areas no refcount block covers: the missing
     * refcount blocks come right after the run and, when their indexes are past the refcount table or the table
     * must have at least {@code minEntries} entries, a larger table right after them; the new blocks count the
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
    private long allocateAtEnd(int count, long minEntries) throws IOException {
        long top = endOfCounted();
        long runEnd = top + count;
        long oldClusters = (long) table.length * 8 / clusterSize;
        long maxClusters = Qcow2Header.MAX_REFTABLE_BYTES / clusterSize;
        long blocks = 0;
        long tableClusters = 0;
        // the new blocks and the new table count themselves too: grow the estimates until they cover it all
        while (true) {
            long end = runEnd + blocks + tableClusters;
            if (end > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets", "host offsets past 2^56");
            }
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
        LinkedHashMap<Long, Block> created = new LinkedHashMap<>();
        long next = runEnd;
        for (long i = top >>> blockBits; end > top && i <= (end - 1) >>> blockBits; i++) {
            // as QEMU's alloc_refcount_block: each new block takes the next free cluster, and when another missing
            // block covers that cluster, that block comes right after it (and so on until one describes itself)
            for (long j = i; (j >= table.length || table[(int) j] == 0) && !created.containsKey(j); ) {
                created.put(j, new Block(new byte[clusterSize], order));
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
            Block nb = created.get(c >>> blockBits);
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
                put(c, 1);
            }
        }
        if (tableClusters > 0) {
            long newOffset = (runEnd + blocks) << clusterBits;
            ByteBuffer t = ByteBuffer.allocate((int) (tableClusters * clusterSize)).order(ByteOrder.BIG_ENDIAN);
            t.asLongBuffer().put(newTable);
            storage.write(t, newOffset);
            sync();
            ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putLong(0, newOffset)
                    .putInt(8, (int) tableClusters);
            storage.write(h, 48);
            sync();
            for (long c = 0; c < oldClusters; c++) {
                retired.add((tableOffset >>> clusterBits) + c);
            }
            tableOffset = newOffset;
            table = newTable;
            blockSet = null;
        } else {
            sync();
            for (long i : created.keySet()) {
                writeEntry(i, newTable, created.keySet());
            }
        }
        for (var e : created.entrySet()) {
            cache(newTable[(int) (long) e.getKey()], e.getValue());
        }
        return top;
    }

    /**
     * Allocates {@code count} contiguous clusters (first fit from the hint) where refcount blocks exist
     * already, setting their refcounts to 1, or returns -1 when there is no such run: creating blocks and
     * growing the table are left to {@link #allocate}.
     */
    long allocateExistingRun(int count) throws IOException {
        long start = freeHint;
        for (long c = start; c < start + count; c++) {
            long index = c >>> blockBits;
            if (index >= table.length || table[(int) index] == 0) {
                return -1;
            }
            if (get(c) != 0) {
                start = c + 1;
            }
        }
        for (long c = start; c < start + count; c++) {
            put(c, 1);
        }
        if (start == freeHint) {
            freeHint = start + count;
        }
        return start;
    }

    /**
     * Writes the refcount table entry of the new block {@code i}, after that of the new block that counts it (if
     * another new one does), so that no crash in between leaves a block in the table whose own refcount no block
     * in the table holds.
     */
    private void writeEntry(long i, long[] newTable, Set<Long> created) throws IOException {
        if (table[(int) i] != 0) {
            return;
        }
        long describer = newTable[(int) i] >>> clusterBits >>> blockBits;
        if (describer != i && created.contains(describer)) {
            writeEntry(describer, newTable, created);
        }
        ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newTable[(int) i]);
        storage.write(e, tableOffset + i * 8);
        table[(int) i] = newTable[(int) i];
        blockSet = null;
    }

    // ------------------------------------------------------------ packed bytes for compressed clusters

    /**
     * Where the next compressed bytes may go, inside the cluster the last ones ended in (QEMU's free_byte_offset),
     * or 0: the next bytes start a new cluster. Forgotten when that cluster's refcount drops to 0, so that bytes are
     * never packed into a cluster that may have been handed out again.
     */
    private long freeByteOffset;

    /**
     * The longest run data writes and preallocation ask {@link #allocateRun} for: a quarter of what one refcount
     * block covers, so that their runs usually fill the holes of covered space first-fit (longer runs, such as
     * tables, are placed at the end with the refcount blocks they need).
     */
    int maxRun() {
        return (int) Math.max(1, Math.min(1 << 20, (1L << blockBits) / 4));
    }


    /**
     * Hands out {@code length} bytes ({@code 0 < length < cluster size}) for compressed data, packed after
     * the previous ones as QEMU's qcow2_alloc_bytes packs them, so that the same writes give the same offsets:
     * in the cluster the previous bytes ended in while it has room (and its refcount is below the maximum),
     * crossing into the next cluster when that is the first free one, else from the start of the first free
     * cluster. Every cluster the bytes touch gains one reference, in the cache: the L2 entries that point at the
     * bytes reach the disk only after the refcounts and a sync (the instance's writeBack), so a crash can only leak.
     *
     * @return the host byte offset of the bytes
     * @throws UnsupportedFeatureException if the refcount table would have to grow past QEMU's limit, or host
     *         offsets past 2^56 would be needed
     */
    long allocateBytes(int length) throws IOException {
        if (length <= 0 || length >= clusterSize) {
            throw new IllegalArgumentException("bad compressed length " + length);
        }
        long offset = freeByteOffset;
        if (offset != 0 && Long.compareUnsigned(get(offset >>> clusterBits), max()) >= 0) {
            // as QEMU: a cluster whose refcount is at its maximum takes no more bytes
            offset = 0;
        }
        long room = offset == 0 ? 0 : clusterSize - (offset & (clusterSize - 1));
        while (offset == 0 || room < length) {
            long c = firstFit(freeHint, 1);
            if (c + 1 > (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits)) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 host offsets",
                        "host offsets past 2^56");
            }
            if (!covered(c >>> blockBits)) {
                // as QEMU: the new refcount block goes after the cluster, and the bytes then start afresh in it
                createBlockAfter(c >>> blockBits, c + 1);
                offset = 0;
                continue;
            }
            freeHint = c + 1;
            if (offset == 0 || ((offset >>> clusterBits) + 1) != c) {
                offset = c << clusterBits;
                room = clusterSize;
            } else {
                room += clusterSize;
            }
        }
        for (long k = offset >>> clusterBits; k <= (offset + length - 1) >>> clusterBits; k++) {
            put(k, get(k) + 1);
        }
        freeByteOffset = ((offset + length) & (clusterSize - 1)) == 0 ? 0 : offset + length;
        return offset;
    }

    /** Gives back bytes from {@link #allocateBytes} that no table entry points at (a failed write). */
    void freeBytes(long at, int length) throws IOException {
        for (long k = at >>> clusterBits; k <= (at + length - 1) >>> clusterBits; k++) {
            long left = get(k) - 1;
            put(k, left);
            if (left == 0) {
                freeHint = Math.min(freeHint, k);
            }
        }
    }

    /**
     * As QEMU's qcow2_shrink_reftable: refcount blocks that count nothing but (possibly) themselves are
     * dropped from the refcount table, which is written and synced; their clusters then have no refcount
     * (0) without further writes.
     */
    void dropUnusedBlocks() throws IOException {
        long[] kept = table.clone();
        boolean changed = false;
        for (int i = 0; i < table.length; i++) {
            long offset = table[i];
            if (offset == 0) {
                continue;
            }
            Block b = block(offset);
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
        ByteBuffer t = ByteBuffer.allocate(kept.length * 8).order(ByteOrder.BIG_ENDIAN);
        t.asLongBuffer().put(kept);
        storage.write(t, tableOffset);
        sync();
        long[] dropped = table;
        table = kept;
        blockSet = null;
        for (int i = 0; i < dropped.length; i++) {
            if (dropped[i] != kept[i]) {
                blocks.remove(dropped[i]);
                dirty.remove(dropped[i]);
                freeHint = Math.min(freeHint, (long) i << blockBits);
                long self = dropped[i] >>> clusterBits;
                if (self >>> blockBits != i && get(self) != 0) {
                    // a block stored in another block's range was counted there: that reference goes too
                    put(self, get(self) - 1);
                    freeHint = Math.min(freeHint, self);
                }
            }
        }
    }

    /** The last host cluster with a non-zero refcount below {@code endCluster}, or -1. */
    long lastUsed(long endCluster) throws IOException {
        for (long c = endCluster - 1; c >= 0; c--) {
            long index = c >>> blockBits;
            if (index >= table.length || table[(int) index] == 0) {
                c = index << blockBits; // skip the block: nothing it would cover is counted
                continue;
            }
            if (get(c) != 0) {
                return c;
            }
        }
        return -1;
    }

    /** Takes the clusters of replaced refcount tables: they lose their reference after the next sync. */
    List<Long> takeRetired() {
        List<Long> out = List.copyOf(retired);
        retired.clear();
        return out;
    }

    /**
     * Whether {@link #allocate} can return {@code count} clusters, growing the refcount table if it must (which
     * is refused only past QEMU's 8 MiB table limit or 2^56 bytes).
     */
    boolean canAllocate(int count) throws IOException {
        long c = freeHint;
        int found = 0;
        while (found < count) {
            long index = c >>> blockBits;
            if (index >= table.length) {
                // growing puts new blocks and the new table at the end, and then there is room for anything
                return (long) table.length * 8 + clusterSize <= Qcow2Header.MAX_REFTABLE_BYTES
                        && c + count - found + 3L * (1L << blockBits) < (Qcow2Checks.MAX_HOST_OFFSET >>> clusterBits);
            }
            if (table[(int) index] == 0) {
                // a new refblock takes one of its own clusters
                found += (int) Math.min(Integer.MAX_VALUE, (1L << blockBits) - 1);
                c = (index + 1) << blockBits;
                continue;
            }
            if (get(c) == 0) {
                found++;
            }
            c++;
        }
        return true;
    }

    /** Drops the refcount of a cluster that lost one reference by one, and returns the new refcount. */
    long decrement(long cluster) throws IOException {
        long old = get(cluster);
        if (old == 0) {
            throw new CorruptImageException(resource, -1, "host cluster " + cluster + " lost a reference but its "
                    + "refcount is already 0");
        }
        put(cluster, old - 1);
        if (old == 1) {
            freeHint = Math.min(freeHint, cluster);
        }
        return old - 1;
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
        Block b = null;
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
                freeHint = Math.min(freeHint, c);
                forgetPacked(c);
            }
            i = j;
        }
        if (b != null) {
            storage.write(ByteBuffer.wrap(b.bytes()), table[(int) blockIndex]);
        }
        return freed;
    }

    /**
     * Takes back a cluster from {@link #allocate} that nothing points at (rolling back an allocation): its
     * refcount returns to 0 (a crash before that reaches the disk only leaks it) and first fit finds it again.
     */
    void free(long cluster) throws IOException {
        put(cluster, 0);
        freeHint = Math.min(freeHint, cluster);
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

    /** The refcount blocks' host offsets, for {@link #isBlock}; null after the table changed. */
    private java.util.Set<Long> blockSet;

    /** Whether the cluster at host offset {@code offset} is a refcount block. */
    boolean isBlock(long offset) {
        java.util.Set<Long> set = blockSet;
        if (set == null) {
            set = new java.util.HashSet<>();
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
