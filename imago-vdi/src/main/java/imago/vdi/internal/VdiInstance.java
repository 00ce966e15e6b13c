package imago.vdi.internal;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.BlockTable;
import imago.api.spi.Checker;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * One open VDI image. Blocks are found through the shared {@link BlockTable}; a new block goes at the index the
 * header's allocated count gives (QEMU's rule, so that blocks stay dense), is zeroed, and is named by its entry
 * only after a flush made it durable. On that flush the header's count is written before the entries (see
 * {@link #beforeEntries}).
 */
final class VdiInstance implements FormatInstance, Checker, BlockTable.Blocks {
    private final Storage storage;
    private final String name;
    private final VdiHeader header;
    private final boolean writable;
    private final long size;
    private final BlockTable table;
    /** The next block index to hand out, and the count the header says (guarded by the table's lock). */
    private long blocksAllocated;
    private long writtenCount;

    /**
     * Opens the layer over {@code header}, reading its block map. The table is handed this instance as its {@link BlockTable.Blocks} before the constructor ends: reading it
     * calls none of them.
     */
    VdiInstance(Storage storage, VdiHeader header, boolean writable) throws IOException {
        this.storage = storage;
        this.name = storage.name();
        this.header = header;
        this.writable = writable;
        this.size = header.diskSize();
        this.table = BlockTable.read(storage, header.offsetBmap(), header.blocksInImage(), ByteOrder.LITTLE_ENDIAN,
                header.blockSize(), this);
        this.writtenCount = header.blocksAllocated();
        this.blocksAllocated = header.blocksAllocated();
    }

    /** The block map. */
    BlockTable table() {
        return table;
    }

    /** Writes {@code count} as the header's count of allocated blocks, and syncs it. */
    void repairCount(long count) throws IOException {
        table.lock().lock();
        try {
            blocksAllocated = count;
            writeCount();
        } finally {
            table.lock().unlock();
        }
    }

    /** Makes the next allocation take index {@code next} or later (a writable open's view of the entries). */
    void allocateFrom(long next) {
        blocksAllocated = Math.max(blocksAllocated, next);
    }

    /** Whether {@code entry} names a block: every value below the zero and unallocated markers (QEMU's rule). */
    static boolean allocated(int entry) {
        return Integer.toUnsignedLong(entry) < Integer.toUnsignedLong(VdiHeader.ZERO);
    }

    @Override
    public long hostOffset(int entry) {
        return allocated(entry) ? header.offsetData() + Integer.toUnsignedLong(entry) * header.blockSize() : -1;
    }

    @Override
    public Mapping unallocated(long offset, long length) {
        return Mapping.Zero.unreserved(offset, length);
    }

    /** The next index; its block is zeroed (QEMU writes whole blocks, so the file ends where it ends). */
    @Override
    public int allocate(int block) throws IOException {
        long index = blocksAllocated;
        if (index >= header.blocksInImage()) {
            throw new imago.api.CorruptImageException(name, VdiHeader.BLOCKS_ALLOCATED_AT, "no free block index: "
                    + index + " blocks are allocated of " + header.blocksInImage());
        }
        long host = header.offsetData() + index * header.blockSize();
        storage.writeZeroes(host, header.blockSize(), false);
        blocksAllocated = index + 1;
        return (int) index;
    }

    @Override
    public void abandon(int block, int entry) {
        if (Integer.toUnsignedLong(entry) == blocksAllocated - 1) {
            blocksAllocated--;
        }
    }

    /**
     * Writes the header's allocated count before the entries: a crash between the two leaves a count ahead of the
     * entries (qemu-img check's "allocated blocks mismatch"), whose next allocation takes a fresh index; the other
     * order would leave an entry QEMU's next allocation hands out again, two blocks in one place.
     */
    @Override
    public void beforeEntries() throws IOException {
        if (blocksAllocated != writtenCount) {
            writeCount();
        }
    }

    private void writeCount() throws IOException {
        ByteBuffer count = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, (int) blocksAllocated);
        storage.write(count, VdiHeader.BLOCKS_ALLOCATED_AT);
        storage.sync();
        writtenCount = blocksAllocated;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of((int) header.blockSize());
    }

    @Override
    public Mapping mapping(long offset, long maxLength) {
        return table.mapping(offset, maxLength, size);
    }

    /** A static image's blocks are never written as a whole: where the file has holes, they read as zero. */
    @Override
    public boolean mapsStorageHoles() {
        return header.isStatic();
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        return table.beginWrite(offset, length, size);
    }

    /**
     * {@inheritDoc} Blocks the map does not name read as zero already; an allocated block gets zeroes written (QEMU's
     * vdi driver has no zero writes, and VDI cannot unmap a block without leaving a hole in its dense indices). A
     * request that must not fall back to writing zeroes ({@link ZeroFlag#NO_FALLBACK}) is refused, as in QEMU.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below) {
        if (flags.contains(ZeroFlag.NO_FALLBACK)) {
            return 0; // refused, as qemu-io's write -z -n is on vdi
        }
        long end = Math.min(size, offset + length);
        long pos = offset;
        while (pos < end) {
            int block = (int) (pos / header.blockSize());
            if (table.hostOffset(block) >= 0) {
                break;
            }
            pos = Math.min(end, (block + 1) * header.blockSize());
        }
        return pos - offset;
    }

    @Override
    public void flush() throws IOException {
        if (writable) {
            table.flush();
        }
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    @Override
    public void close() throws IOException {
        if (writable && table.hasDirty()) {
            table.flush();
            storage.sync();
        }
    }

    /**
     * Checks as QEMU 7.2's vdi driver does: every entry that names a block must name one below the map's length
     * and no other entry the same, and their number must be the header's count. No repair, as in QEMU.
     *
     * @throws UnsupportedFeatureException for a repair (qemu-img's exit 63)
     */
    @Override
    public CheckReport check(Repair repair) throws IOException {
        if (repair != Repair.NONE) {
            throw new UnsupportedFeatureException(name, Feature.CHECK, "vdi repair",
                    "This image format does not support checks");
        }
        List<String> messages = new ArrayList<>();
        long corruptions = 0;
        long count = 0;
        long blocks = header.blocksInImage();
        java.util.BitSet used = new java.util.BitSet();
        for (int block = 0; block < table.length(); block++) {
            int entry = table.get(block);
            if (!allocated(entry)) {
                continue;
            }
            long index = Integer.toUnsignedLong(entry);
            if (index < blocks) {
                count++;
                if (!used.get((int) index)) {
                    used.set((int) index);
                } else {
                    // QEMU prints the index twice (its map holds the index itself)
                    note(messages, "ERROR: block index " + index + " also used by " + index);
                    corruptions++;
                }
            } else {
                note(messages, "ERROR: block index " + block + " too large, is " + index);
                corruptions++;
            }
        }
        long recorded = readCount();
        if (count != recorded) {
            note(messages, "ERROR: allocated blocks mismatch, is " + count + ", should be " + recorded);
            corruptions++;
        }
        return new CheckReport(name, "vdi", 0, corruptions, 0, 0, 0, 0, 0, 0, 0, 0, messages, Optional.empty());
    }

    /** The header's count as it is in the file (a flush may not have written the one in memory yet). */
    private long readCount() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(b, VdiHeader.BLOCKS_ALLOCATED_AT);
        return Integer.toUnsignedLong(b.getInt(0));
    }

    private static void note(List<String> messages, String line) {
        if (messages.size() < CheckReport.MAX_MESSAGES) {
            messages.add(line);
        }
    }

    private void ensureWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(name, offset, "image is opened read-only");
        }
    }

    @Override
    public String toString() {
        return "vdi " + (header.isStatic() ? "static" : "dynamic") + " on " + name;
    }
}
