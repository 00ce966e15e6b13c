package imago.vpc.internal;

import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.ZeroFlag;
import imago.api.spi.AllocatingWriteTicket;
import imago.api.spi.BackingReader;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One open dynamic or differencing VHD: the footer copy at the start, the dynamic header, the BAT and the
 * blocks. A dynamic disk reads an allocated block whole and an unallocated one as zeroes (as QEMU does); a
 * differencing disk reads a sector from its block when the block's bitmap has its bit, and from the parent
 * otherwise.
 *
 * <p>Writes to a block that is allocated (and, on a dynamic disk, whose bitmap has every bit) go in place with no
 * lock. Every other write holds {@link #metaLock} from {@link #beginWrite} until its ticket closes: allocation
 * (see the package documentation for its order), copying the uncovered part of partly written sectors whose bit
 * is clear, and setting bits. Changed BAT entries and bitmaps of blocks already in the BAT are written on
 * {@link #flush}, after a sync that makes the data they announce durable.
 */
final class VpcDynamicInstance implements FormatInstance {
    private final Storage storage;
    private final String name;
    private final byte[] footerBytes;
    private final boolean writable;
    private final boolean differencing;
    private final String parentName;
    private final long size;
    private final long blockSize;
    private final int blockShift;
    private final int bitmapLength;
    private final VpcBat bat;
    private final VpcBitmaps bitmaps;
    /** Guards allocation, bitmap changes and the fields below. */
    private final ReentrantLock metaLock = new ReentrantLock();
    /** Where the trailing footer is and the next block goes. */
    private long dataEnd;
    /** Blocks of a dynamic disk whose bitmap is known to have every bit set (read without the lock). */
    private final AtomicLongArray fullBitmap;
    /** Blocks under 4 KiB have no bitmap by QEMU's formula: a dynamic disk's blocks are then always whole. */
    private final boolean noBitmap;

    VpcDynamicInstance(Storage storage, byte[] footerBytes, boolean writable, boolean differencing, String parentName,
            long size, long blockSize, int bitmapLength, VpcBat bat, long dataEnd) {
        this.storage = storage;
        this.name = storage.name();
        this.footerBytes = footerBytes.clone();
        this.writable = writable;
        this.differencing = differencing;
        this.parentName = parentName;
        this.size = size;
        this.blockSize = blockSize;
        this.blockShift = Long.numberOfTrailingZeros(blockSize);
        this.bitmapLength = bitmapLength;
        this.bat = bat;
        this.bitmaps = new VpcBitmaps(storage, bitmapLength, bat);
        this.dataEnd = dataEnd;
        this.fullBitmap = new AtomicLongArray((bat.length() + 63) / 64);
        this.noBitmap = bitmapLength * 8L < blockSize / VpcFields.SECTOR;
    }

    /**
     * Makes the file end in a footer right after the data area again (a crash between a block's footer and its
     * BAT entry leaves it elsewhere), for writable opens.
     */
    void repairTail() throws IOException {
        ByteBuffer tail = ByteBuffer.allocate(VpcFields.FOOTER_LENGTH);
        long fileSize = storage.size();
        if (fileSize >= dataEnd + VpcFields.FOOTER_LENGTH) {
            storage.read(tail, dataEnd);
        }
        if (!Arrays.equals(tail.array(), footerBytes)) {
            storage.write(ByteBuffer.wrap(footerBytes), dataEnd);
        }
        if (fileSize > dataEnd + VpcFields.FOOTER_LENGTH) {
            storage.resize(dataEnd + VpcFields.FOOTER_LENGTH, Preallocation.OFF);
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of((int) Math.min(blockSize, Integer.MAX_VALUE));
    }

    @Override
    public List<Dependency> dependencies() {
        return differencing ? List.of(new Dependency.BackingFile(parentName, Optional.of("vpc"))) : List.of();
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(name + ": bad mapping query: offset " + offset + ", length " + maxLength);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, size - offset);
        int block = (int) (offset >>> blockShift);
        int entry = bat.get(block);
        if (entry == VpcFields.UNUSED) {
            long stop = Math.min(end, blockStart(block + 1));
            for (int b = block + 1; stop < end && !bat.allocated(b); b++) {
                stop = Math.min(end, blockStart(b + 1));
            }
            return differencing ? new Mapping.Unallocated(offset, stop - offset)
                    : Mapping.Zero.unreserved(offset, stop - offset);
        }
        long stop = Math.min(end, blockStart(block + 1));
        long inBlock = offset - blockStart(block);
        long host = sectors(entry) + bitmapLength + inBlock;
        if (!differencing) {
            return new Mapping.Data(offset, stop - offset, storage, host);
        }
        byte[] bits = bitmaps.get(block);
        int first = (int) (inBlock / VpcFields.SECTOR);
        int last = (int) ((stop - blockStart(block) + VpcFields.SECTOR - 1) / VpcFields.SECTOR);
        boolean present = VpcBitmaps.test(bits, first);
        long runStop = Math.min(stop, blockStart(block)
                + (long) VpcBitmaps.runEnd(bits, first + 1, last, present) * VpcFields.SECTOR);
        return present ? new Mapping.Data(offset, runStop - offset, storage, host)
                : new Mapping.Unallocated(offset, runStop - offset);
    }

    private static long sectors(int entry) {
        return (entry & 0xFFFF_FFFFL) * VpcFields.SECTOR;
    }

    private long blockStart(int block) {
        return (long) block << blockShift;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(name + ": no data mapping for " + length + " bytes at offset " + offset
                    + " (size " + size + ")");
        }
        int block = (int) (offset >>> blockShift);
        long end = Math.min(Math.min(offset + length, size), blockStart(block + 1));
        int entry = bat.get(block);
        if (!differencing && entry != VpcFields.UNUSED && (noBitmap || knownFull(block))) {
            return WriteTicket.of(data(entry, block, offset, end));
        }
        metaLock.lock();
        boolean handedOver = false;
        try {
            WriteTicket t = bat.allocated(block) ? inBlock(block, offset, end, below) : allocate(block, offset, end, below);
            handedOver = true;
            return t;
        } finally {
            if (!handedOver) {
                metaLock.unlock();
            }
        }
    }

    private Mapping.Data data(int entry, int block, long offset, long end) {
        return new Mapping.Data(offset, end - offset, storage, sectors(entry) + bitmapLength + (offset - blockStart(block)));
    }

    private boolean knownFull(int block) {
        return (fullBitmap.get(block >>> 6) & (1L << block)) != 0;
    }

    private void setFull(int block, boolean full) {
        long bit = 1L << block;
        fullBitmap.getAndUpdate(block >>> 6, w -> full ? w | bit : w & ~bit);
    }

    /** A write into allocated {@code block} that may need bits set (under the held lock). */
    private WriteTicket inBlock(int block, long offset, long end, BackingReader below) throws IOException {
        Mapping.Data mapping = data(bat.get(block), block, offset, end);
        byte[] bits = bitmaps.get(block);
        int first = (int) ((offset - blockStart(block)) / VpcFields.SECTOR);
        int last = (int) ((end - blockStart(block) + VpcFields.SECTOR - 1) / VpcFields.SECTOR);
        if (!differencing && VpcBitmaps.runEnd(bits, 0, (int) (blockSize / VpcFields.SECTOR), true)
                == blockSize / VpcFields.SECTOR) {
            setFull(block, true);
            bitmaps.forget(block);
            metaLock.unlock();
            return WriteTicket.of(mapping);
        }
        if (VpcBitmaps.runEnd(bits, first, last, true) == last) {
            metaLock.unlock();
            return WriteTicket.of(mapping);
        }
        copyPartialSectors(block, offset, end, bits, below, bat.bitmapOffset(block) + bitmapLength);
        return new AllocatingWriteTicket(mapping, metaLock) {
            @Override
            protected void onCommit() {
                byte[] changed = bits.clone();
                VpcBitmaps.set(changed, first, last);
                bitmaps.changed(block, changed);
            }
        };
    }

    /** Allocates {@code block} at the end of the data area for a write of {@code [offset, end)} (lock held). */
    private WriteTicket allocate(int block, long offset, long end, BackingReader below) throws IOException {
        long at = dataEnd;
        long newEnd = at + bitmapLength + blockSize;
        if (at / VpcFields.SECTOR >= 0xFFFF_FFFFL) {
            throw new ImageLimitException(name, at, "no BAT entry can name a block at offset " + at);
        }
        long fileSize = storage.size();
        if (fileSize > at + VpcFields.FOOTER_LENGTH) {
            // left over from an allocation a crash cut short: what the new block does not overwrite must read zero
            long stale = Math.min(fileSize, newEnd);
            storage.writeZeroes(at + VpcFields.FOOTER_LENGTH, stale - at - VpcFields.FOOTER_LENGTH, false);
        }
        // first the footer after the new block, so that the file never ends in a block without one
        storage.write(ByteBuffer.wrap(footerBytes), newEnd);
        long dataOffset = at + bitmapLength;
        byte[] bits = new byte[bitmapLength];
        int first = (int) ((offset - blockStart(block)) / VpcFields.SECTOR);
        int last = (int) ((end - blockStart(block) + VpcFields.SECTOR - 1) / VpcFields.SECTOR);
        if (differencing) {
            copyPartialSectors(block, offset, end, bits, below, dataOffset);
            VpcBitmaps.set(bits, first, last);
        } else {
            Arrays.fill(bits, (byte) 0xFF); // the rest of the block reads as zero, as unallocated space did
        }
        Mapping.Data mapping = new Mapping.Data(offset, end - offset, storage, dataOffset + (offset - blockStart(block)));
        return new AllocatingWriteTicket(mapping, metaLock) {
            @Override
            protected void onCommit() throws IOException {
                if (bitmapLength > 0) {
                    storage.write(ByteBuffer.wrap(bits.clone()), at);
                    bitmaps.putWritten(block, bits);
                }
                if (!differencing) {
                    setFull(block, true);
                }
                dataEnd = newEnd;
                bat.set(block, (int) (at / VpcFields.SECTOR));
            }

            @Override
            protected void onAbort() throws IOException {
                if (storage.size() == newEnd + VpcFields.FOOTER_LENGTH) {
                    storage.resize(at + VpcFields.FOOTER_LENGTH, Preallocation.OFF);
                }
            }
        };
    }

    /**
     * Fills the parts of the first and last sector of {@code [offset, end)} that the write does not cover, when
     * their bit is clear, from below (the parent, or zeroes), at the block's data offset {@code dataOffset}.
     */
    private void copyPartialSectors(int block, long offset, long end, byte[] bits, BackingReader below,
            long dataOffset) throws IOException {
        long start = blockStart(block);
        long headSector = (offset - start) / VpcFields.SECTOR;
        long tailSector = (end - start - 1) / VpcFields.SECTOR;
        long headFrom = start + headSector * VpcFields.SECTOR;
        if (offset > headFrom && !VpcBitmaps.test(bits, (int) headSector)) {
            copyBelow(headFrom, offset, below, dataOffset + (headFrom - start));
        }
        long tailTo = Math.min(size, start + (tailSector + 1) * VpcFields.SECTOR);
        if (end < tailTo && !VpcBitmaps.test(bits, (int) tailSector)) {
            copyBelow(end, tailTo, below, dataOffset + (end - start));
        }
    }

    private void copyBelow(long from, long to, BackingReader below, long host) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) (to - from));
        below.read(buf, from);
        storage.write(buf.flip(), host);
    }

    /**
     * {@inheritDoc} VHD has no way to zero by metadata that QEMU uses (its vpc driver has no zero writes), so a
     * request that must not fall back to writing zeroes ({@link ZeroFlag#NO_FALLBACK}) is refused, as qemu-io's
     * {@code write -z -n} is refused on vpc.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        return flags.contains(ZeroFlag.NO_FALLBACK) ? 0
                : ensureZeroMapping(offset, length, flags.contains(ZeroFlag.MAY_UNMAP));
    }

    /**
     * {@inheritDoc} A dynamic disk's unallocated blocks read as zero already, and a whole allocated block is
     * unmapped when {@code mayUnmap} allows; anything else (a differencing disk, part of an allocated block) is
     * left to explicit zeroes.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        ensureWritable(offset);
        if (differencing) {
            return 0;
        }
        long end = offset + Math.min(length, size - offset);
        long pos = offset;
        while (pos < end) {
            int block = (int) (pos >>> blockShift);
            long stop = Math.min(end, blockStart(block + 1));
            if (bat.allocated(block)) {
                boolean whole = pos == blockStart(block) && (stop == blockStart(block + 1) || stop == size);
                if (!mayUnmap || !whole) {
                    break;
                }
                unmap(block);
            }
            pos = stop;
        }
        return pos - offset;
    }

    /**
     * {@inheritDoc} On a dynamic disk, every block the range covers whole is unmapped (it reads as zero) and its
     * space given back to the file system; a differencing disk keeps its data (unmapping would show the parent).
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        ensureWritable(offset);
        if (differencing || offset >= size) {
            return;
        }
        long end = offset + Math.min(length, size - offset);
        for (int block = (int) ((offset + blockSize - 1) >>> blockShift); blockStart(block) < end; block++) {
            long stop = blockStart(block + 1);
            if ((stop <= end || end == size) && bat.allocated(block)) {
                unmap(block);
            }
        }
    }

    /** Marks {@code block} unallocated (written on flush) and punches its space; it then reads as zero. */
    private void unmap(int block) throws IOException {
        metaLock.lock();
        try {
            if (!bat.allocated(block)) {
                return;
            }
            long host = bat.bitmapOffset(block);
            bat.set(block, VpcFields.UNUSED);
            setFull(block, false);
            bitmaps.forget(block);
            storage.discard(host + bitmapLength, blockSize);
        } finally {
            metaLock.unlock();
        }
    }

    /** Syncs the data, then writes changed bitmaps and BAT entries that announce it. */
    @Override
    public void flush() throws IOException {
        if (writable) {
            metaLock.lock();
            try {
                if (bat.hasDirty() || bitmaps.hasDirty()) {
                    storage.sync();
                    bitmaps.writeDirty();
                    bat.writeDirty(storage);
                }
            } finally {
                metaLock.unlock();
            }
        }
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    @Override
    public void close() throws IOException {
        if (writable && (bat.hasDirty() || bitmaps.hasDirty())) {
            flush();
            storage.sync();
        }
    }

    private void ensureWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(name, offset, "image is opened read-only");
        }
    }

    @Override
    public String toString() {
        return (differencing ? "vpc differencing" : "vpc dynamic") + " on " + name;
    }
}
