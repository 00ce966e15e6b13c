package imago.api.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CorruptImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The shared two-level table: entries read in the format's byte order, the format's check before a table is read,
 * a cache that never drops a changed table, and write-back in the crash-safe order (sync, L2 tables, sync after a
 * new one, L1 sectors).
 */
class TwoLevelTableTest {
    private static final long L1_AT = 512;
    /** 128 L1 entries: two sectors of them. */
    private static final int L1_ENTRIES = 128;
    /** 256 entries an L2 table: four sectors. */
    private static final int L2_ENTRIES = 256;
    private static final long TABLE_BYTES = 8L * L2_ENTRIES;

    /** Records writes (offset and length) and syncs in order. */
    private static final class Recording extends ArrayStorage {
        final List<String> events = new ArrayList<>();

        Recording() {
            super(64 * 1024, 1);
        }

        @Override
        public synchronized void write(ByteBuffer src, long offset) throws IOException {
            events.add("write " + offset + "+" + src.remaining());
            super.write(src, offset);
        }

        @Override
        public void sync() {
            events.add("sync");
        }
    }

    private final Recording storage = new Recording();
    private final List<String> checked = new ArrayList<>();

    private TwoLevelTable load(ByteOrder order, int maxCached) throws IOException {
        return TwoLevelTable.load(storage, order, L1_AT, L1_ENTRIES, L2_ENTRIES, maxCached, (offset, index, end) -> {
            checked.add(offset + " from " + index);
            if (offset + TABLE_BYTES > end) {
                throw new CorruptImageException("array", L1_AT + 8L * index, "outside");
            }
        });
    }

    private void put(long value, long at, ByteOrder order) throws IOException {
        storage.write(ByteBuffer.allocate(8).order(order).putLong(0, value), at);
    }

    @Test
    void entriesAreReadInTheFormatsByteOrder() throws IOException {
        for (ByteOrder order : List.of(ByteOrder.BIG_ENDIAN, ByteOrder.LITTLE_ENDIAN)) {
            put(4096, L1_AT + 8 * 3, order);
            put(0x1234_5678_9ABCL, 4096 + 8 * 7, order);
            TwoLevelTable tables = load(order, 4);
            assertEquals(L1_ENTRIES, tables.entries());
            assertEquals(4096, tables.l1(3));
            TwoLevelTable.L2 t = tables.l2(tables.l1(3), 3, storage.size());
            assertEquals(4096, t.offset());
            assertEquals(L2_ENTRIES, t.length());
            assertEquals(0x1234_5678_9ABCL, t.entry(7), order.toString());
        }
    }

    @Test
    void theFormatChecksATableOnlyBeforeReadingIt() throws IOException {
        TwoLevelTable tables = load(ByteOrder.BIG_ENDIAN, 4);
        TwoLevelTable.L2 t = tables.l2(4096, 1, storage.size());
        assertSame(t, tables.l2(4096, 1, storage.size()), "cached");
        assertEquals(List.of("4096 from 1"), checked);
        assertThrows(CorruptImageException.class, () -> tables.l2(storage.size() - 8, 2, storage.size()));
    }

    @Test
    void writeBackSyncsTheDataWritesTablesSyncsAfterANewOneThenL1Sectors() throws IOException {
        TwoLevelTable tables = load(ByteOrder.BIG_ENDIAN, 4);
        TwoLevelTable.L2 old = tables.l2(4096, 0, storage.size());
        tables.set(old, 200, 8192); // sector 3 of the old table
        TwoLevelTable.L2 fresh = tables.fresh(16384);
        tables.set(fresh, 0, 20480);
        tables.setL1(100, 16384); // sector 1 of L1
        storage.events.clear();
        tables.writeBack();
        assertEquals(List.of("sync", "write " + (4096 + 3 * 512) + "+512", "write 16384+" + TABLE_BYTES, "sync",
                "write " + (L1_AT + 512) + "+512"), storage.events);
        storage.events.clear();
        tables.writeBack();
        assertEquals(List.of(), storage.events, "nothing left to write");
        TwoLevelTable reread = load(ByteOrder.BIG_ENDIAN, 4);
        assertEquals(16384, reread.l1(100));
        assertEquals(8192, reread.l2(4096, 0, storage.size()).entry(200));
        assertEquals(20480, reread.l2(16384, 100, storage.size()).entry(0));
    }

    @Test
    void withoutANewTableL1SectorsFollowWithoutASecondSync() throws IOException {
        TwoLevelTable tables = load(ByteOrder.BIG_ENDIAN, 4);
        tables.set(tables.l2(4096, 0, storage.size()), 0, 8192);
        tables.setL1(0, 4096);
        tables.setL1(64, 4096); // sectors 0 and 1: one write
        storage.events.clear();
        tables.writeBack();
        assertEquals(List.of("sync", "write 4096+512", "write " + L1_AT + "+1024"), storage.events);
    }

    @Test
    void theCacheKeepsChangedTablesAndWritesBackWhenFull() throws IOException {
        TwoLevelTable tables = load(ByteOrder.BIG_ENDIAN, 2);
        TwoLevelTable.L2 changed = tables.l2(4096, 0, storage.size());
        tables.set(changed, 0, 1);
        tables.l2(8192, 1, storage.size());
        tables.l2(12288, 2, storage.size()); // evicts the clean 8192, keeps the changed 4096
        assertSame(changed, tables.l2(4096, 0, storage.size()));
        checked.clear();
        tables.l2(8192, 1, storage.size());
        assertEquals(List.of("8192 from 1"), checked, "read again");
        storage.events.clear();
        tables.writeBackIfFull();
        assertEquals(List.of(), storage.events, "one changed table of two");
        tables.set(tables.fresh(16384), 0, 1);
        tables.writeBackIfFull();
        assertEquals(List.of("sync", "write 4096+512", "write 16384+" + TABLE_BYTES), storage.events);
    }

    @Test
    void repairsWriteTablesWholeAtOnce() throws IOException {
        TwoLevelTable tables = load(ByteOrder.LITTLE_ENDIAN, 4);
        TwoLevelTable.L2 t = tables.l2(4096, 0, storage.size());
        tables.set(t, 5, 0);
        tables.setL1(0, 0);
        storage.events.clear();
        tables.writeNow(t);
        tables.writeL1Now();
        assertEquals(List.of("write 4096+" + TABLE_BYTES, "write " + L1_AT + "+" + 8 * L1_ENTRIES), storage.events);
        storage.events.clear();
        tables.writeBack();
        assertEquals(List.of(), storage.events, "nothing left to write");
    }
}
