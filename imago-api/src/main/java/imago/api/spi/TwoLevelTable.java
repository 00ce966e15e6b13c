package imago.api.spi;

import imago.api.CorruptImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The shape qcow (version 1) and QED share: an L1 table of 64-bit entries, held in memory whole, naming L2 tables of
 * 64-bit entries, read on first use and kept in a bounded LRU cache, with the changes not yet written. What an entry
 * means stays with the format; this class holds the entries and writes them back.
 *
 * <p>Changes are written back by {@link #writeBack} in the order a crash can survive: first a sync, so that every
 * data cluster an entry is about to name is durable; then the new L2 tables whole and the changed sectors of the
 * others (each entry lies in one sector, which a disk writes atomically); then, if a new table was written, another
 * sync; then the changed sectors of the L1 table. A crash anywhere leaves entries that name durable data or nothing
 * (clusters allocated but not named are leaks, as {@code qemu-img check} counts them).
 *
 * <p>Not thread-safe: the format's lock guards it.
 */
public final class TwoLevelTable {
    /** Entries per 512-byte sector: the unit written back. */
    private static final int SECTOR_ENTRIES = 64;

    /** Checks, before an L2 table is read, that the offset an L1 entry names may hold one. */
    @FunctionalInterface
    public interface TableCheck {
        /**
         * Refuses an L2 table at {@code offset}, named by L1 entry {@code l1Index}, in a file that ends at
         * {@code fileEnd} as the format sees it.
         *
         * @throws CorruptImageException if no L2 table can lie there
         */
        void check(long offset, int l1Index, long fileEnd) throws CorruptImageException;
    }

    /** One cached L2 table. */
    public static final class L2 {
        private final long offset;
        private final long[] entries;
        /** Never written: written whole on write-back. */
        private boolean fresh;
        private final BitSet dirtySectors = new BitSet();

        private L2(long offset, long[] entries, boolean fresh) {
            this.offset = offset;
            this.entries = entries;
            this.fresh = fresh;
        }

        /** Where the table lies in the file. */
        public long offset() {
            return offset;
        }

        /** Entry {@code index}. */
        public long entry(int index) {
            return entries[index];
        }

        /** The number of entries. */
        public int length() {
            return entries.length;
        }

        private boolean dirty() {
            return fresh || !dirtySectors.isEmpty();
        }
    }

    private final Storage storage;
    private final ByteOrder order;
    private final long l1Offset;
    private final long[] l1;
    private final BitSet dirtyL1 = new BitSet();
    private final int l2Entries;
    private final int maxCached;
    private final TableCheck tableCheck;
    private final Map<Long, L2> cache = new LinkedHashMap<>(16, 0.75f, true);

    private TwoLevelTable(Storage storage, ByteOrder order, long l1Offset, long[] l1, int l2Entries, int maxCached,
            TableCheck tableCheck) {
        this.storage = storage;
        this.order = order;
        this.l1Offset = l1Offset;
        this.l1 = l1;
        this.l2Entries = l2Entries;
        this.maxCached = maxCached;
        this.tableCheck = tableCheck;
    }

    /**
     * Reads the L1 table of {@code l1Entries} entries in byte order {@code order} at {@code l1Offset} (the format has
     * checked that it lies in the file; past the end of the file it reads zeroes).
     *
     * @param l2Entries the entries of an L2 table
     * @param maxCached how many L2 tables the cache keeps (more while they hold changes)
     * @param tableCheck what refuses an L1 entry's L2 table offset before it is read
     * @throws IOException if the storage cannot be read
     */
    public static TwoLevelTable load(Storage storage, ByteOrder order, long l1Offset, int l1Entries, int l2Entries,
            int maxCached, TableCheck tableCheck) throws IOException {
        Objects.requireNonNull(tableCheck, "tableCheck");
        if (l2Entries < 1 || maxCached < 1) {
            throw new IllegalArgumentException("l2Entries " + l2Entries + ", maxCached " + maxCached);
        }
        return new TwoLevelTable(storage, order, l1Offset, read(storage, order, l1Offset, l1Entries), l2Entries,
                maxCached, tableCheck);
    }

    private static long[] read(Storage storage, ByteOrder order, long offset, int entries) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(entries * 8).order(order);
        if (offset < storage.size()) { // a table wholly past the end of the file (cut short) is zeroes, unread
            storage.read(buf, offset);
        }
        long[] out = new long[entries];
        buf.clear().asLongBuffer().get(out);
        return out;
    }

    /** The number of L1 entries. */
    public int entries() {
        return l1.length;
    }

    /** L1 entry {@code index}. */
    public long l1(int index) {
        return l1[index];
    }

    /** Sets L1 entry {@code index} in memory, written on {@link #writeBack}. */
    public void setL1(int index, long value) {
        l1[index] = value;
        dirtyL1.set(index / SECTOR_ENTRIES);
    }

    /**
     * The L2 table at {@code offset} (named by L1 entry {@code index}), read if not cached; {@code fileEnd} is the end
     * of the file as the format's allocation sees it.
     *
     * @throws CorruptImageException if the format's {@link TableCheck} refuses the offset
     * @throws IOException if the storage cannot be read
     */
    public L2 l2(long offset, int index, long fileEnd) throws IOException {
        L2 t = cache.get(offset);
        if (t != null) {
            return t;
        }
        tableCheck.check(offset, index, fileEnd);
        t = new L2(offset, read(storage, order, offset, l2Entries), false);
        put(t);
        return t;
    }

    /**
     * The end of the highest host range the tables name: each L2 table ({@code tableBytes} from its L1 entry) and each
     * L2 entry's cluster, whose end {@code entryEnd} gives (0 for an entry that names none). In a file cut short, what
     * the tables name may lie past the end of the file, where the format would put new clusters. Reads every L2 table
     * once, through the cache.
     *
     * @throws CorruptImageException if the format's {@link TableCheck} refuses a table's offset
     * @throws IOException if the storage cannot be read
     */
    public long highestEnd(long tableBytes, long fileEnd, java.util.function.LongUnaryOperator entryEnd)
            throws IOException {
        long max = 0;
        for (int i = 0; i < l1.length; i++) {
            if (l1[i] == 0) {
                continue;
            }
            max = Math.max(max, l1[i] + tableBytes);
            L2 t = l2(l1[i], i, fileEnd);
            for (int j = 0; j < t.length(); j++) {
                long e = t.entry(j);
                if (e != 0) {
                    max = Math.max(max, entryEnd.applyAsLong(e));
                }
            }
        }
        return max;
    }

    /** A new, empty table at {@code offset}, to be written whole on write-back. */
    public L2 fresh(long offset) {
        L2 t = new L2(offset, new long[l2Entries], true);
        put(t);
        return t;
    }

    private void put(L2 t) {
        cache.put(t.offset, t);
        if (cache.size() > maxCached) {
            var it = cache.values().iterator();
            while (it.hasNext() && cache.size() > maxCached) {
                if (!it.next().dirty()) {
                    it.remove();
                }
            }
        }
    }

    /** Sets entry {@code index} of {@code t} in memory, written on {@link #writeBack}. */
    public void set(L2 t, int index, long value) {
        t.entries[index] = value;
        if (!t.fresh) {
            t.dirtySectors.set(index / SECTOR_ENTRIES);
        }
    }

    /**
     * Writes back when as many cached tables hold changes as the cache keeps, so that it does not grow past its
     * bound.
     *
     * @throws IOException if a write or sync fails
     */
    public void writeBackIfFull() throws IOException {
        int n = 0;
        for (L2 t : cache.values()) {
            n += t.dirty() ? 1 : 0;
        }
        if (n >= maxCached) {
            writeBack();
        }
    }

    /**
     * Writes every change in the crash-safe order of the class comment.
     *
     * @throws IOException if a write or sync fails
     */
    public void writeBack() throws IOException {
        List<L2> dirty = new ArrayList<>();
        for (L2 t : cache.values()) {
            if (t.dirty()) {
                dirty.add(t);
            }
        }
        if (dirty.isEmpty() && dirtyL1.isEmpty()) {
            return;
        }
        storage.sync();
        boolean freshWritten = false;
        for (L2 t : dirty) {
            if (t.fresh) {
                storage.write(bytes(t.entries, 0, t.entries.length), t.offset);
                t.fresh = false;
                freshWritten = true;
            } else {
                writeSectors(t.entries, t.dirtySectors, t.offset);
            }
            t.dirtySectors.clear();
        }
        if (!dirtyL1.isEmpty()) {
            if (freshWritten) {
                storage.sync();
            }
            writeSectors(l1, dirtyL1, l1Offset);
            dirtyL1.clear();
        }
    }

    /**
     * Writes the L1 table at once, whole (a check's repairs).
     *
     * @throws IOException if the write fails
     */
    public void writeL1Now() throws IOException {
        storage.write(bytes(l1, 0, l1.length), l1Offset);
        dirtyL1.clear();
    }

    /**
     * Writes {@code t} at once, whole (a check's repairs).
     *
     * @throws IOException if the write fails
     */
    public void writeNow(L2 t) throws IOException {
        storage.write(bytes(t.entries, 0, t.entries.length), t.offset);
        t.fresh = false;
        t.dirtySectors.clear();
    }

    private void writeSectors(long[] table, BitSet sectors, long at) throws IOException {
        for (int s = sectors.nextSetBit(0); s >= 0; s = sectors.nextSetBit(s + 1)) {
            int end = s;
            while (sectors.get(end + 1)) {
                end++;
            }
            int from = s * SECTOR_ENTRIES;
            int to = Math.min(table.length, (end + 1) * SECTOR_ENTRIES);
            storage.write(bytes(table, from, to), at + 8L * from);
            s = end;
        }
    }

    private ByteBuffer bytes(long[] table, int from, int to) {
        ByteBuffer b = ByteBuffer.allocate((to - from) * 8).order(order);
        b.asLongBuffer().put(table, from, to - from);
        return b;
    }
}
