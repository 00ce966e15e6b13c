package imago.api.spi;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The shape several formats share: one 32-bit table entry per fixed-size block of the disk, naming where the block
 * lies in the file (VirtualBox VDI's block map, Parallels' catalog). This class holds the table in memory and does
 * what is the same for all of them: the lookup ({@link #mapping}), the allocation of a block for a write
 * ({@link #beginWrite}) and the crash-safe order in which new blocks and the entries naming them reach the file
 * ({@link #flush}). What an entry means — which values are unallocated, where a block lies, where the next one
 * goes — the format says through its {@link Blocks}.
 *
 * <p>Order: a new block's bytes are written by the write that allocated it; its entry changes in memory when the
 * write commits, and reaches the file on the next {@link #flush}, after a {@link Storage#sync() sync} that made the
 * block durable. A crash before then loses the unflushed write and leaves at most an unreferenced block at the end
 * of the file, never an entry naming a block that was not written.
 *
 * <p>Thread-safe: lookups and writes into allocated blocks take no lock; allocation, commits and flushes hold one.
 */
public final class BlockTable {
    /** Entries are written back by whole sectors of the table. */
    private static final int SECTOR = 512;
    /** The most entries a table may have: 64 MiB in memory. */
    public static final int MAX_ENTRIES = 1 << 24;
    private static final int LOAD_CHUNK = 1 << 20;

    /** What a format's entries mean. Called with the table's lock held where said. */
    public interface Blocks {
        /** The file offset of the block {@code entry} names, or -1 if it names none (the block is not allocated). */
        long hostOffset(int entry);

        /**
         * How a run of unallocated blocks reads (blocks past the table's end included): typically
         * {@link Mapping.Zero#unreserved} or {@link Mapping.Unallocated}.
         */
        Mapping unallocated(long offset, long length);

        /**
         * Sets a new block aside for {@code block} (lock held) and returns the entry that will name it; once this
         * returns, the block's bytes in the file read as zeroes.
         *
         * @throws IOException if the file cannot take the block
         */
        int allocate(int block) throws IOException;

        /** Gives back the block {@link #allocate} set aside for {@code block} when its write failed (lock held). */
        void abandon(int block, int entry) throws IOException;

        /**
         * Writes what the format keeps beside the table (a count of allocated blocks), on a flush after the data
         * sync and before the changed entries are written (lock held).
         *
         * @implSpec The default writes nothing.
         */
        default void beforeEntries() throws IOException {
        }
    }

    private final Storage storage;
    private final long tableOffset;
    private final ByteOrder order;
    private final long blockSize;
    private final Blocks blocks;
    private final AtomicIntegerArray entries;
    /** Sectors of the on-disk table (relative to its start) holding entries not yet written; guarded by lock. */
    private final BitSet dirty = new BitSet();
    private final ReentrantLock lock = new ReentrantLock();

    private BlockTable(Storage storage, long tableOffset, ByteOrder order, long blockSize, Blocks blocks,
            AtomicIntegerArray entries) {
        this.storage = storage;
        this.tableOffset = tableOffset;
        this.order = order;
        this.blockSize = blockSize;
        this.blocks = blocks;
        this.entries = entries;
    }

    /**
     * Reads {@code count} entries of byte order {@code order} at {@code tableOffset} of {@code storage}.
     *
     * @param blockSize the bytes of guest data each entry covers (a power of two is not required)
     * @throws ImageLimitException if {@code count} exceeds {@link #MAX_ENTRIES}
     * @throws CorruptImageException if the table's offset is negative (past the end of the file it reads as zeroes)
     * @throws IOException if the storage cannot be read
     */
    public static BlockTable read(Storage storage, long tableOffset, long count, ByteOrder order, long blockSize,
            Blocks blocks) throws IOException {
        Objects.requireNonNull(blocks, "blocks");
        String name = storage.name();
        if (count < 0 || count > MAX_ENTRIES) {
            throw new ImageLimitException(name, tableOffset, "the block table has " + Long.toUnsignedString(count)
                    + " entries, more than the limit of " + MAX_ENTRIES);
        }
        if (blockSize < 1) {
            throw new CorruptImageException(name, "invalid block size " + blockSize);
        }
        if (tableOffset < 0) {
            throw new CorruptImageException(name, tableOffset, "the block table's offset is negative");
        }
        // a table cut short by the end of the file (at most MAX_ENTRIES entries) reads on as zeroes, as QEMU reads it
        AtomicIntegerArray entries = new AtomicIntegerArray((int) count);
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(LOAD_CHUNK, Math.max(4, count * 4))).order(order);
        // entries wholly past the end stay zero, unread
        long inFile = Math.max(0, Math.min(count, (storage.size() - tableOffset + 3) / 4));
        for (int i = 0; i < inFile; ) {
            int n = (int) Math.min(buf.capacity() / 4, inFile - i);
            buf.clear().limit(n * 4);
            storage.read(buf, tableOffset + (long) i * 4);
            if (buf.hasRemaining()) {
                throw new CorruptImageException(name, tableOffset + (long) i * 4, "short read of the block table");
            }
            for (int j = 0; j < n; j++) {
                entries.set(i + j, buf.getInt(j * 4));
            }
            i += n;
        }
        return new BlockTable(storage, tableOffset, order, blockSize, blocks, entries);
    }

    /** The table's on-disk bytes: {@code values} in {@code order}, zero-padded to whole sectors (for create). */
    public static ByteBuffer encode(int[] values, ByteOrder order) {
        ByteBuffer buf = ByteBuffer.allocate((int) roundUp(values.length * 4L, SECTOR)).order(order);
        for (int i = 0; i < values.length; i++) {
            buf.putInt(i * 4, values[i]);
        }
        return buf;
    }

    private static long roundUp(long value, long unit) {
        return (value + unit - 1) / unit * unit;
    }

    /** The number of entries. */
    public int length() {
        return entries.length();
    }

    /** The bytes of guest data per entry. */
    public long blockSize() {
        return blockSize;
    }

    /** Entry {@code block}. */
    public int get(int block) {
        return entries.get(block);
    }

    /** The file offset of {@code block}, or -1 if it is not allocated (or past the table's end). */
    public long hostOffset(long block) {
        return block >= 0 && block < entries.length() ? blocks.hostOffset(entries.get((int) block)) : -1;
    }

    /**
     * Changes entry {@code block} in memory (a repair, or a discard) and marks it for the next {@link #flush}.
     * Callers hold no other write of the block.
     */
    public void set(int block, int value) {
        lock.lock();
        try {
            entries.set(block, value);
            dirty.set((int) ((long) block * 4 / SECTOR));
        } finally {
            lock.unlock();
        }
    }

    /** Whether entries changed since they were written. */
    public boolean hasDirty() {
        lock.lock();
        try {
            return !dirty.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /** The lock that allocation and flushes hold, for a format's own metadata changes. */
    public ReentrantLock lock() {
        return lock;
    }

    /**
     * The mapping from guest {@code offset} for at most {@code maxLength} bytes of an image of {@code size} bytes: a
     * block's data, or a run of unallocated blocks as the format's {@link Blocks#unallocated} says.
     */
    public Mapping mapping(long offset, long maxLength, long size) {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(storage.name() + ": bad mapping query: offset " + offset + ", length "
                    + maxLength);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, size - offset);
        long block = offset / blockSize;
        long host = hostOffset(block);
        long stop = Math.min(end, blockStart(block + 1));
        if (host >= 0) {
            // contiguous blocks make one mapping: a long read is one storage read
            for (long b = block + 1; stop < end && hostOffset(b) == host + (blockStart(b) - blockStart(block)); b++) {
                stop = Math.min(end, blockStart(b + 1));
            }
            return new Mapping.Data(offset, stop - offset, storage, host + (offset - blockStart(block)));
        }
        for (long b = block + 1; stop < end && hostOffset(b) < 0; b++) {
            // past the table's end nothing is allocated
            stop = b >= entries.length() ? end : Math.min(end, blockStart(b + 1));
        }
        return blocks.unallocated(offset, block >= entries.length() ? end - offset : stop - offset);
    }

    private long blockStart(long block) {
        return block * blockSize;
    }

    /**
     * Begins a write of guest bytes from {@code offset} (at most {@code length}, inside one block): in place if the
     * block is allocated, else into a new block that {@link Blocks#allocate} sets aside, named by the entry when the
     * ticket commits. The lock is held from allocation to the ticket's close.
     *
     * @throws CorruptImageException if the block has no entry (the table is shorter than the disk)
     * @throws IOException if allocation fails
     */
    public WriteTicket beginWrite(long offset, long length, long size) throws IOException {
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(storage.name() + ": no data mapping for " + length + " bytes at offset "
                    + offset + " (size " + size + ")");
        }
        long blockIndex = offset / blockSize;
        if (blockIndex >= entries.length()) {
            throw new CorruptImageException(storage.name(), offset, "no table entry for block " + blockIndex
                    + " (guest offset " + offset + "): the table has " + entries.length() + " entries");
        }
        int block = (int) blockIndex;
        long end = Math.min(Math.min(offset + length, size), blockStart(block + 1));
        long host = hostOffset(block);
        if (host >= 0) {
            return WriteTicket.of(new Mapping.Data(offset, end - offset, storage, host + offset - blockStart(block)));
        }
        lock.lock();
        boolean handedOver = false;
        try {
            host = hostOffset(block);
            if (host >= 0) {
                return WriteTicket.of(new Mapping.Data(offset, end - offset, storage,
                        host + offset - blockStart(block)));
            }
            int entry = blocks.allocate(block);
            Mapping.Data mapping = new Mapping.Data(offset, end - offset, storage,
                    blocks.hostOffset(entry) + offset - blockStart(block));
            handedOver = true;
            return new Allocation(block, entry, mapping);
        } finally {
            if (!handedOver) {
                lock.unlock();
            }
        }
    }

    /**
     * Makes the flushed entries durable in the crash-safe order: syncs the blocks they name, lets the format write
     * what it keeps beside the table, then writes the changed sectors of the table. The caller syncs afterwards.
     *
     * @throws IOException if a write or the sync fails
     */
    public void flush() throws IOException {
        lock.lock();
        try {
            if (dirty.isEmpty()) {
                return;
            }
            storage.sync();
            blocks.beforeEntries();
            int perSector = SECTOR / 4;
            for (int s = dirty.nextSetBit(0); s >= 0; s = dirty.nextSetBit(s + 1)) {
                int first = s * perSector;
                int n = Math.min(perSector, entries.length() - first);
                ByteBuffer buf = ByteBuffer.allocate(n * 4).order(order);
                for (int i = 0; i < n; i++) {
                    buf.putInt(i * 4, entries.get(first + i));
                }
                storage.write(buf, tableOffset + (long) first * 4);
                dirty.clear(s);
            }
        } finally {
            lock.unlock();
        }
    }

    /** A write into a newly allocated block, holding the lock until it is closed. */
    private final class Allocation extends AllocatingWriteTicket {
        private final int block;
        private final int entry;

        Allocation(int block, int entry, Mapping.Data mapping) {
            super(mapping, lock);
            this.block = block;
            this.entry = entry;
        }

        @Override
        protected void onCommit() {
            entries.set(block, entry);
            dirty.set((int) ((long) block * 4 / SECTOR));
        }

        @Override
        protected void onAbort() throws IOException {
            blocks.abandon(block, entry);
        }
    }
}
