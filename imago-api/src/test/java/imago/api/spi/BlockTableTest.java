package imago.api.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The shared block table: lookups merge contiguous and unallocated blocks, allocation names a block only on
 * commit (and gives it back on abort), and a flush syncs the blocks before it writes the entries naming them.
 */
class BlockTableTest {
    private static final int BLOCK = 4096;
    private static final int TABLE_AT = 512;

    /** A storage that records the order of writes and syncs. */
    static final class Recording extends ArrayStorage {
        final List<String> events = new ArrayList<>();

        Recording(int size) {
            super(size, 1);
        }

        @Override
        public synchronized void write(ByteBuffer src, long offset) throws IOException {
            events.add("write " + offset);
            super.write(src, offset);
        }

        @Override
        public void sync() {
            events.add("sync");
        }
    }

    /** Entries name blocks by index from offset 8192; 0 is unallocated; the next block goes at the end. */
    static final class Blocks implements BlockTable.Blocks {
        final Storage storage;
        int next;
        final List<String> events;

        Blocks(Storage storage, int next, List<String> events) {
            this.storage = storage;
            this.next = next;
            this.events = events;
        }

        @Override
        public long hostOffset(int entry) {
            return entry == 0 ? -1 : 8192L + (entry - 1L) * BLOCK;
        }

        @Override
        public Mapping unallocated(long offset, long length) {
            return Mapping.Zero.unreserved(offset, length);
        }

        @Override
        public int allocate(int block) {
            return ++next;
        }

        @Override
        public void abandon(int block, int entry) {
            next--;
        }

        @Override
        public void beforeEntries() {
            events.add("count");
        }
    }

    private static BlockTable table(Recording storage, int[] entries, int next) throws IOException {
        storage.write(BlockTable.encode(entries, ByteOrder.LITTLE_ENDIAN), TABLE_AT);
        storage.events.clear();
        return BlockTable.read(storage, TABLE_AT, entries.length, ByteOrder.LITTLE_ENDIAN, BLOCK,
                new Blocks(storage, next, storage.events));
    }

    @Test
    void lookupsMergeContiguousAndUnallocatedBlocks() throws IOException {
        Recording storage = new Recording(8192 + 3 * BLOCK);
        BlockTable t = table(storage, new int[] {1, 2, 0, 0, 3}, 3);
        Mapping.Data d = assertInstanceOf(Mapping.Data.class, t.mapping(100, 1 << 20, 6 * BLOCK));
        assertEquals(2 * BLOCK - 100, d.length());
        assertEquals(8192 + 100, d.hostOffset());
        assertEquals(2 * BLOCK, assertInstanceOf(Mapping.Zero.class, t.mapping(2 * BLOCK, 1 << 20, 6 * BLOCK))
                .length());
        // the sixth block has no entry: it reads as unallocated, to the end
        assertEquals(BLOCK, t.mapping(5 * BLOCK, 1 << 20, 6 * BLOCK).length());
        assertInstanceOf(Mapping.EndOfImage.class, t.mapping(6 * BLOCK, 1, 6 * BLOCK));
        assertThrows(CorruptImageException.class, () -> t.beginWrite(5 * BLOCK, 1, 6 * BLOCK));
    }

    @Test
    void anEntryNamesANewBlockOnlyWhenItsWriteCommitsAndTheFlushSyncsFirst() throws IOException {
        Recording storage = new Recording(8192 + BLOCK);
        BlockTable t = table(storage, new int[] {1, 0, 0}, 1);
        try (WriteTicket aborted = t.beginWrite(BLOCK, 10, 3 * BLOCK)) {
            assertEquals(8192 + BLOCK, aborted.mapping().hostOffset());
        }
        assertEquals(-1, t.hostOffset(1), "an aborted write names nothing");
        try (WriteTicket w = t.beginWrite(2 * BLOCK + 5, 10, 3 * BLOCK)) {
            assertEquals(8192 + BLOCK + 5, w.mapping().hostOffset(), "the aborted block is handed out again");
            w.write(ByteBuffer.allocate(10));
            w.commit();
        }
        assertEquals(8192 + BLOCK, t.hostOffset(2));
        storage.events.clear();
        t.flush();
        assertEquals(List.of("sync", "count", "write " + TABLE_AT), storage.events);
        ByteBuffer entries = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(entries, TABLE_AT);
        assertEquals(2, entries.getInt(8));
        storage.events.clear();
        t.flush();
        assertEquals(List.of(), storage.events, "nothing to write twice");
    }

    @Test
    void tablesPastTheFileReadAsZeroesAndPastTheLimitAreRefused() throws IOException {
        Recording storage = new Recording(1024);
        // a file cut short: the entries past its end read as zeroes, as QEMU reads them
        BlockTable cut = BlockTable.read(storage, 512, 200, ByteOrder.LITTLE_ENDIAN, BLOCK,
                new Blocks(storage, 0, storage.events));
        assertEquals(200, cut.length());
        assertEquals(0, cut.get(199));
        assertThrows(CorruptImageException.class, () -> BlockTable.read(storage, -1, 2, ByteOrder.LITTLE_ENDIAN,
                BLOCK, new Blocks(storage, 0, storage.events)));
        assertThrows(ImageLimitException.class, () -> BlockTable.read(storage, 512, BlockTable.MAX_ENTRIES + 1L,
                ByteOrder.LITTLE_ENDIAN, BLOCK, new Blocks(storage, 0, storage.events)));
    }
}
