package imago.qed.internal;

import imago.api.CorruptImageException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The L1 table (in memory whole) and the L2 tables (read on first use, kept in a bounded LRU cache) of one open
 * image, with the changes not yet written. Not thread-safe: the instance's lock guards it.
 *
 * <p>Changes are written back by {@link #writeBack} in the order a crash can survive: first a sync, so that every
 * data cluster an entry is about to name is durable; then the new L2 tables whole and the changed sectors of the
 * others (each entry lies in one sector, which a disk writes atomically); then, if a new table was written, another
 * sync; then the changed sectors of the L1 table. A crash anywhere leaves entries that name durable data or nothing
 * (clusters allocated but not named are leaks, as {@code qemu-img check} counts them).
 */
final class QedTables {
    /** Entries per 512-byte sector: the unit written back. */
    private static final int SECTOR_ENTRIES = 64;

    /** One cached L2 table. */
    static final class L2 {
        final long offset;
        final long[] entries;
        /** Never written: written whole on write-back. */
        boolean fresh;
        final BitSet dirtySectors = new BitSet();

        L2(long offset, long[] entries, boolean fresh) {
            this.offset = offset;
            this.entries = entries;
            this.fresh = fresh;
        }

        boolean dirty() {
            return fresh || !dirtySectors.isEmpty();
        }
    }

    private final Storage storage;
    private final String name;
    private final QedHeader header;
    private final long[] l1;
    private final BitSet dirtyL1 = new BitSet();
    private final int maxCached;
    private final Map<Long, L2> cache = new LinkedHashMap<>(16, 0.75f, true);

    private QedTables(Storage storage, QedHeader header, long[] l1, int maxCached) {
        this.storage = storage;
        this.name = storage.name();
        this.header = header;
        this.l1 = l1;
        this.maxCached = maxCached;
    }

    /** Reads the L1 table the header names (checked by the header to lie inside the file). */
    static QedTables load(Storage storage, QedHeader header, long cacheBytes) throws IOException {
        long[] l1 = read(storage, header.l1TableOffset(), header.tableEntries());
        int maxCached = (int) Math.max(4, Math.min(4096, cacheBytes / header.tableBytes()));
        return new QedTables(storage, header, l1, maxCached);
    }

    private static long[] read(Storage storage, long offset, int entries) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(entries * 8).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(buf, offset); // past the end of the file: zeroes
        long[] out = new long[entries];
        buf.clear().asLongBuffer().get(out);
        return out;
    }

    int entries() {
        return l1.length;
    }

    long l1(int index) {
        return l1[index];
    }

    void setL1(int index, long value) {
        l1[index] = value;
        dirtyL1.set(index / SECTOR_ENTRIES);
    }

    /**
     * The L2 table at {@code offset} (named by L1 entry {@code index}), read if not cached; {@code fileSize} is the
     * end of the allocated clusters.
     *
     * @throws CorruptImageException if the table does not lie in the file
     */
    L2 l2(long offset, int index, long fileSize) throws IOException {
        L2 t = cache.get(offset);
        if (t != null) {
            return t;
        }
        if (!header.validTableOffset(offset, fileSize)) {
            throw new CorruptImageException(name, header.l1TableOffset() + 8L * index, "L1 entry " + index
                    + " names an L2 table at offset " + offset + " that is not a valid table offset");
        }
        t = new L2(offset, read(storage, offset, l1.length), false);
        put(t);
        return t;
    }

    /** A new, empty table at {@code offset}, to be written whole on write-back. */
    L2 fresh(long offset) {
        L2 t = new L2(offset, new long[l1.length], true);
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

    void set(L2 t, int index, long value) {
        t.entries[index] = value;
        if (!t.fresh) {
            t.dirtySectors.set(index / SECTOR_ENTRIES);
        }
    }

    /** Whether changes wait for {@link #writeBack}. */
    boolean dirty() {
        if (!dirtyL1.isEmpty()) {
            return true;
        }
        for (L2 t : cache.values()) {
            if (t.dirty()) {
                return true;
            }
        }
        return false;
    }

    /** How many cached tables hold changes (the caller writes back when too many do). */
    int dirtyTables() {
        int n = 0;
        for (L2 t : cache.values()) {
            n += t.dirty() ? 1 : 0;
        }
        return n;
    }

    int maxCached() {
        return maxCached;
    }

    /** Writes every change in the crash-safe order of the class comment. */
    void writeBack() throws IOException {
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
            writeSectors(l1, dirtyL1, header.l1TableOffset());
            dirtyL1.clear();
        }
    }

    /** Writes the L1 table at once (check's repairs). */
    void writeL1Now() throws IOException {
        storage.write(bytes(l1, 0, l1.length), header.l1TableOffset());
        dirtyL1.clear();
    }

    /** Writes a table at once (check's repairs). */
    void writeNow(L2 t) throws IOException {
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

    private static ByteBuffer bytes(long[] table, int from, int to) {
        ByteBuffer b = ByteBuffer.allocate((to - from) * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(table, from, to - from);
        return b;
    }
}
