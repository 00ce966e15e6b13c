package imago.qcow.internal;

import imago.api.CorruptImageException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The L1 table (in memory whole) and the L2 tables (read on first use, kept in a bounded LRU cache) of one open qcow
 * image, with the changes not yet written. Not thread-safe: the instance's lock guards it.
 *
 * <p>QEMU's qcow driver writes the L1 entry, then the new L2 table, then the L2 entry, each synced, and the data
 * last, so that a crash can leave entries naming clusters whose data never arrived. imago turns that round, as its
 * other formats do: the data goes first, then {@link #writeBack} syncs, writes new L2 tables whole and the changed
 * sectors of the others, syncs again if it wrote a new table, and only then writes the changed sectors of the L1
 * table. A crash leaves entries that name durable data, or clusters nothing names.
 */
final class QcowTables {
    /** Entries per 512-byte sector: the unit written back. */
    private static final int SECTOR_ENTRIES = 64;

    /** One cached L2 table. */
    static final class L2 {
        final long offset;
        final long[] entries;
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
    private final QcowHeader header;
    private final long[] l1;
    private final BitSet dirtyL1 = new BitSet();
    private final int maxCached;
    private final Map<Long, L2> cache = new LinkedHashMap<>(16, 0.75f, true);

    private QcowTables(Storage storage, QcowHeader header, long[] l1, int maxCached) {
        this.storage = storage;
        this.name = storage.name();
        this.header = header;
        this.l1 = l1;
        this.maxCached = maxCached;
    }

    /**
     * Reads the L1 table the header names.
     *
     * @throws CorruptImageException if it does not lie in the file
     */
    static QcowTables load(Storage storage, QcowHeader header, long fileLength, long cacheBytes) throws IOException {
        int entries = (int) header.l1Entries();
        long offset = header.l1TableOffset();
        if (offset < QcowHeader.LENGTH || offset > fileLength || fileLength - offset < 8L * entries) {
            throw new CorruptImageException(storage.name(), 40, "the L1 table (" + entries + " entries at offset "
                    + Long.toUnsignedString(offset) + ") does not lie in the file of " + fileLength + " bytes");
        }
        long[] l1 = read(storage, offset, entries);
        long tableBytes = 8L * header.l2Entries();
        int maxCached = (int) Math.max(16, Math.min(65536, cacheBytes / tableBytes));
        return new QcowTables(storage, header, l1, maxCached);
    }

    private static long[] read(Storage storage, long offset, int entries) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(entries * 8);
        storage.read(buf, offset);
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
     * The L2 table at {@code offset} (named by L1 entry {@code index}), read if not cached; {@code fileEnd} is the
     * end of the file as allocation sees it.
     *
     * @throws CorruptImageException if the table does not lie in the file
     */
    L2 l2(long offset, int index, long fileEnd) throws IOException {
        L2 t = cache.get(offset);
        if (t != null) {
            return t;
        }
        long bytes = 8L * header.l2Entries();
        if (offset < QcowHeader.LENGTH || offset > fileEnd - bytes) {
            throw new CorruptImageException(name, header.l1TableOffset() + 8L * index, "L1 entry " + index
                    + " names an L2 table at offset " + Long.toUnsignedString(offset) + " outside the file of "
                    + fileEnd + " bytes");
        }
        t = new L2(offset, read(storage, offset, header.l2Entries()), false);
        put(t);
        return t;
    }

    /** A new, empty table at {@code offset}, to be written whole on write-back. */
    L2 fresh(long offset) {
        L2 t = new L2(offset, new long[header.l2Entries()], true);
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
        ByteBuffer b = ByteBuffer.allocate((to - from) * 8);
        b.asLongBuffer().put(table, from, to - from);
        return b;
    }
}
