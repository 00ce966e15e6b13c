package imago.vpc.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The block allocation table in memory: the entries of the blocks the virtual size covers (readers see
 * changes at once), the end of the data area (QEMU's {@code free_data_block_offset}: where the trailing
 * footer is and the next block goes), and which of the table's sectors have changed since they were written.
 * Entries past the virtual size are only scanned, for the end of the data area.
 */
final class VpcBat {
    /** The most entries kept in memory: 64 MiB, 32 PiB of 2 MiB blocks, 64 GiB of 4 KiB ones. */
    static final long MAX_LOADED_ENTRIES = 1L << 24;
    /** QEMU's limit on the table's entries (INT_MAX / 4). */
    static final long MAX_TABLE_ENTRIES = Integer.MAX_VALUE / 4;
    private static final int LOAD_CHUNK = 1 << 20;

    private final AtomicIntegerArray entries;
    private final long tableOffset;
    /** BAT sectors (relative to the table) whose entries changed and are not written yet; guarded by the caller. */
    private final BitSet dirty = new BitSet();

    private VpcBat(AtomicIntegerArray entries, long tableOffset) {
        this.entries = entries;
        this.tableOffset = tableOffset;
    }

    /**
     * Loads {@code maxEntries} entries at {@code tableOffset}, keeping the first {@code needed}, and checks that
     * every allocated block lies inside the file.
     *
     * @return the table and, through {@code dataEnd[0]}, the end of the data area
     * @throws ImageLimitException if more than {@link #MAX_LOADED_ENTRIES} entries are needed
     * @throws CorruptImageException if the table or a block it names lies past the end of the file
     */
    static VpcBat load(Storage storage, long tableOffset, long maxEntries, long needed, long blockSize,
            int bitmapLength, long fileSize, long[] dataEnd) throws IOException {
        String name = storage.name();
        if (needed > MAX_LOADED_ENTRIES) {
            throw new ImageLimitException(name, tableOffset, "the BAT needs " + needed + " entries for the virtual "
                    + "size, more than the limit of " + MAX_LOADED_ENTRIES);
        }
        long tableBytes = maxEntries * 4;
        // QEMU reads a BAT cut short as zeroes and then finds the data area ending past the end of the file
        if (tableOffset < 0 || VpcFields.roundUp(VpcFields.add(name, tableOffset, tableOffset, tableBytes,
                "BAT end"), VpcFields.SECTOR) > VpcFields.roundUp(fileSize, VpcFields.SECTOR)) {
            throw new CorruptImageException(name, tableOffset, TRUNCATED + " (the BAT of " + maxEntries
                    + " entries at offset " + Long.toUnsignedString(tableOffset) + " ends past the end of the file of "
                    + fileSize + " bytes)");
        }
        AtomicIntegerArray kept = new AtomicIntegerArray((int) needed);
        long end = VpcFields.roundUp(tableOffset + tableBytes, VpcFields.SECTOR);
        long worstEntry = -1;
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(LOAD_CHUNK, Math.max(4, tableBytes)));
        for (long i = 0; i < maxEntries; ) {
            int n = (int) Math.min(buf.capacity() / 4, maxEntries - i);
            buf.clear().limit(n * 4);
            storage.read(buf, tableOffset + i * 4);
            if (buf.hasRemaining()) {
                throw new CorruptImageException(name, tableOffset + i * 4, "short read of the BAT");
            }
            for (int j = 0; j < n; j++) {
                int e = buf.getInt(j * 4);
                long index = i + j;
                if (index < needed) {
                    kept.set((int) index, e);
                }
                if (e != VpcFields.UNUSED) {
                    long blockEnd = (e & 0xFFFF_FFFFL) * VpcFields.SECTOR + bitmapLength + blockSize;
                    if (blockEnd > end) {
                        end = blockEnd;
                        worstEntry = index;
                    }
                }
            }
            i += n;
        }
        // QEMU compares with the file's length in whole sectors
        if (end > VpcFields.roundUp(fileSize, VpcFields.SECTOR)) {
            throw new CorruptImageException(name, tableOffset + Math.max(0, worstEntry) * 4, TRUNCATED + " ("
                    + (worstEntry < 0 ? "the BAT" : "BAT entry " + worstEntry + " names a block that") + " ends at offset "
                    + end + ", past the end of the file of " + fileSize + " bytes)");
        }
        dataEnd[0] = end;
        return new VpcBat(kept, tableOffset);
    }

    /** QEMU's words for a BAT or a block past the end of the file, which imago's message leads with. */
    static final String TRUNCATED = "block-vpc: free_data_block_offset points after the end of file. The image has "
            + "been truncated.";

    /** How many entries are kept. */
    int length() {
        return entries.length();
    }

    /** Entry {@code block}: the bitmap's sector number, or {@link VpcFields#UNUSED}. */
    int get(int block) {
        return entries.get(block);
    }

    /** Whether {@code block} is allocated. */
    boolean allocated(int block) {
        return entries.get(block) != VpcFields.UNUSED;
    }

    /** The file offset of {@code block}'s bitmap; the block must be allocated. */
    long bitmapOffset(int block) {
        return (entries.get(block) & 0xFFFF_FFFFL) * VpcFields.SECTOR;
    }

    /** Sets entry {@code block} in memory and marks its BAT sector for the next {@link #writeDirty}. */
    void set(int block, int value) {
        entries.set(block, value);
        dirty.set(block / (VpcFields.SECTOR / 4));
    }

    /** Whether entries changed since they were written. */
    boolean hasDirty() {
        return !dirty.isEmpty();
    }

    /** Writes the changed BAT sectors (whole sectors, clipped to the kept entries). */
    void writeDirty(Storage storage) throws IOException {
        int perSector = VpcFields.SECTOR / 4;
        for (int s = dirty.nextSetBit(0); s >= 0; s = dirty.nextSetBit(s + 1)) {
            int first = s * perSector;
            int n = Math.min(perSector, entries.length() - first);
            ByteBuffer buf = ByteBuffer.allocate(n * 4);
            for (int i = 0; i < n; i++) {
                buf.putInt(i * 4, entries.get(first + i));
            }
            storage.write(buf, tableOffset + (long) first * 4);
            dirty.clear(s);
        }
    }
}
