package imago.vhdx.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The block allocation table: one 64-bit entry per payload block, with a sector bitmap entry after every
 * {@code chunkRatio} of them. Bits 0..2 are the state, bits 20..63 the file offset in MiB. Held whole in memory
 * (its region lies inside the file, which bounds it); entries are read without a lock.
 */
final class VhdxBat {
    /** The most entries imago holds (128 MiB of memory). */
    static final long MAX_ENTRIES = 16L << 20;
    private final AtomicLongArray entries;
    private final long chunkRatio;
    private final long payloadBlocks;

    private VhdxBat(long[] entries, long chunkRatio, long payloadBlocks) {
        this.entries = new AtomicLongArray(entries);
        this.chunkRatio = chunkRatio;
        this.payloadBlocks = payloadBlocks;
    }

    /** Payload blocks per chunk: 2^23 sectors over the block size (QEMU's and the specification's formula). */
    static long chunkRatio(long blockSize, int logicalSectorSize) {
        return (1L << 23) * logicalSectorSize / blockSize;
    }

    /** Entries the BAT has for {@code payloadBlocks} blocks (QEMU's count; differencing disks fill the last chunk). */
    static long entryCount(long payloadBlocks, long chunkRatio, boolean hasParent) {
        long bitmapBlocks = (payloadBlocks + chunkRatio - 1) / chunkRatio;
        if (hasParent) {
            return bitmapBlocks * (chunkRatio + 1);
        }
        return payloadBlocks == 0 ? 0 : payloadBlocks + (payloadBlocks - 1) / chunkRatio;
    }

    /**
     * Loads the BAT of {@code regionLength} bytes at {@code at}.
     *
     * @throws CorruptImageException if the region is too short for the disk or (opened for writing) lies outside the
     *     file
     */
    static VhdxBat load(Storage storage, long at, long regionLength, long payloadBlocks, long chunkRatio,
            boolean hasParent, boolean writable) throws IOException {
        String name = storage.name();
        long count = entryCount(payloadBlocks, chunkRatio, hasParent);
        if (count * 8 > regionLength) {
            throw new CorruptImageException(name, at, "the BAT region (" + regionLength + " bytes) is too small for "
                    + count + " entries");
        }
        // read-only, a BAT past the end of the file (a file cut short) reads as zeroes, as in QEMU
        if (writable && at + count * 8 > storage.size()) {
            throw new CorruptImageException(name, at, "the BAT (" + count * 8 + " bytes at offset " + at
                    + ") is not inside the file (" + storage.size() + " bytes)");
        }
        if (count > MAX_ENTRIES) {
            throw new ImageLimitException(name, at, "the BAT has " + count + " entries; imago reads at most "
                    + MAX_ENTRIES + " (a disk of 16 TiB in 1 MiB blocks, 64 TiB in 4 MiB ones)");
        }
        long[] entries = new long[(int) count];
        ByteBuffer b = VhdxFields.le(1 << 20);
        long inFile = Math.max(0, Math.min(count * 8, storage.size() - at)); // the rest stays zero, unread
        for (long done = 0; done < inFile; ) {
            int n = (int) Math.min(b.capacity(), inFile - done);
            b.clear().limit(n);
            storage.read(b, at + done);
            if (b.hasRemaining()) {
                throw new CorruptImageException(name, at + done + b.position(), "file ends inside the BAT");
            }
            for (int i = 0; i < n; i += 8) {
                entries[(int) ((done + i) / 8)] = b.getLong(i);
            }
            done += n;
        }
        return new VhdxBat(entries, chunkRatio, payloadBlocks);
    }

    long payloadBlocks() {
        return payloadBlocks;
    }

    long chunkRatio() {
        return chunkRatio;
    }

    int length() {
        return entries.length();
    }

    /** The BAT index of payload block {@code block}. */
    long payloadIndex(long block) {
        return block + block / chunkRatio;
    }

    /** The BAT index of the sector bitmap block for the chunk of payload block {@code block}. */
    long bitmapIndex(long block) {
        return (block / chunkRatio) * (chunkRatio + 1) + chunkRatio;
    }

    long entry(long index) {
        return entries.get((int) index);
    }

    void set(long index, long value) {
        entries.set((int) index, value);
    }

    long payload(long block) {
        return entry(payloadIndex(block));
    }

    static int state(long entry) {
        return (int) (entry & 7);
    }

    static long offset(long entry) {
        return (entry >>> 20) * VhdxFields.MIB;
    }

    static long entry(int state, long offset) {
        return (offset / VhdxFields.MIB) << 20 | state;
    }

    /** Whether entry {@code index} is a sector bitmap entry rather than a payload entry. */
    boolean isBitmapEntry(long index) {
        return index % (chunkRatio + 1) == chunkRatio;
    }

    /** The 4 KiB page of the BAT (as it is in memory) that holds entry {@code index}. */
    ByteBuffer page(long index) {
        ByteBuffer b = VhdxFields.le(4096);
        long first = index / 512 * 512;
        for (int i = 0; i < 512 && first + i < entries.length(); i++) {
            b.putLong(i * 8, entries.get((int) (first + i)));
        }
        return b;
    }
}
