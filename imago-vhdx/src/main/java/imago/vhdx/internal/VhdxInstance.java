package imago.vhdx.internal;

import imago.api.CheckReport;
import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.AllocatingWriteTicket;
import imago.api.spi.BackingReader;
import imago.api.spi.Checker;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One open VHDX: its metadata and BAT in memory, the payload blocks in the file.
 *
 * <p>Reads: a fully present block is data in place; a not present or undefined block falls to the parent of a
 * differencing disk and reads as zero otherwise; a zero or unmapped block reads as zero; a partially present block
 * (differencing disks only) is read sector by sector as its sector bitmap says. {@link #mapping} shows every byte of
 * the disk as data without a host offset, as {@code qemu-img map} does (QEMU's vhdx driver reports no block status),
 * while {@link #readMapping} gives the read path the real places.
 *
 * <p>Writes (dynamic and fixed disks): a write into a fully present block goes in place. A write into any other
 * block holds {@link #lock} from {@link #beginWrite} until its ticket closes: the block is allocated at the end of
 * the file rounded up to 1 MiB (as QEMU allocates it), the data written, and on commit, after a sync, the BAT entry
 * is changed through the log: the header names a new log GUID, the log entry (the BAT's 4 KiB page) is written and
 * synced, the page is written in place and synced, and the header's log GUID is cleared. Before the first write of
 * an open, the header gets new file and data write GUIDs.
 */
final class VhdxInstance implements FormatInstance, Checker {
    private final Storage storage;
    private final String name;
    private final boolean writable;
    private final VhdxMetadata meta;
    private final VhdxBat bat;
    private final long batOffset;
    private final VhdxHeaders headers;
    private final String parentName;
    private final long size;
    private final long blockSize;
    private final int blockShift;
    private final long sectorsPerBlock;
    private final boolean replayedOnOpen;
    private final List<String> checkMessages;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean sessionStarted;
    /** Where the next log entry goes, and its sequence number (under {@link #lock}). */
    private long logPosition;
    private long logSequence = 1;

    VhdxInstance(Storage storage, boolean writable, VhdxMetadata meta, VhdxBat bat, long batOffset,
            VhdxHeaders headers, String parentName, boolean replayedOnOpen, List<String> checkMessages) {
        this.storage = storage;
        this.name = storage.name();
        this.writable = writable;
        this.meta = meta;
        this.bat = bat;
        this.batOffset = batOffset;
        this.headers = headers;
        this.parentName = parentName;
        this.size = meta.size();
        this.blockSize = meta.blockSize();
        this.blockShift = Long.numberOfTrailingZeros(blockSize);
        this.sectorsPerBlock = blockSize / meta.logicalSectorSize();
        this.replayedOnOpen = replayedOnOpen;
        this.checkMessages = List.copyOf(checkMessages);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of((int) blockSize);
    }

    @Override
    public List<Dependency> dependencies() {
        return parentName == null ? List.of() : List.of(new Dependency.BackingFile(parentName, Optional.of("vhdx")));
    }

    /** qemu-img's view: everything is data, with no host offset (QEMU's vhdx has no block status). */
    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        Mapping m = readMapping(offset, maxLength);
        return switch (m) {
            case Mapping.Data d -> new Mapping.Special(d.offset(), d.length(), "vhdx");
            case Mapping.Zero z -> new Mapping.Special(z.offset(), z.length(), "vhdx");
            default -> m;
        };
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        // mapping() hands out Special only for extents; reads follow readMapping(), but serve these too
        while (dst.hasRemaining()) {
            Mapping m = readMapping(offset, dst.remaining());
            int n = (int) m.length();
            ByteBuffer part = dst.slice(dst.position(), n);
            switch (m) {
                case Mapping.Data d -> storage.read(part, d.hostOffset());
                case Mapping.Zero z -> {
                    while (part.hasRemaining()) {
                        part.put((byte) 0);
                    }
                }
                default -> throw new IllegalStateException("unexpected " + m);
            }
            dst.position(dst.position() + n);
            offset += n;
        }
    }

    @Override
    public Mapping readMapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(name + ": bad mapping query: offset " + offset + ", length "
                    + maxLength);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, size - offset);
        long block = offset >>> blockShift;
        long entry = bat.payload(block);
        int state = VhdxBat.state(entry);
        long stop = Math.min(end, blockStart(block + 1));
        switch (state) {
            case VhdxFields.FULLY_PRESENT -> {
                long host = VhdxBat.offset(entry) + (offset - blockStart(block));
                for (long b = block + 1; stop < end; b++) {
                    long e = bat.payload(b);
                    if (VhdxBat.state(e) != VhdxFields.FULLY_PRESENT
                            || VhdxBat.offset(e) != host + (blockStart(b) - offset)) {
                        break;
                    }
                    stop = Math.min(end, blockStart(b + 1));
                }
                return new Mapping.Data(offset, stop - offset, storage, host);
            }
            case VhdxFields.PARTIALLY_PRESENT -> {
                return partial(block, entry, offset, stop);
            }
            default -> {
                boolean below = fallsThrough(state);
                for (long b = block + 1; stop < end; b++) {
                    int s = VhdxBat.state(bat.payload(b));
                    if (s == VhdxFields.FULLY_PRESENT || s == VhdxFields.PARTIALLY_PRESENT
                            || fallsThrough(s) != below) {
                        break;
                    }
                    stop = Math.min(end, blockStart(b + 1));
                }
                return below ? new Mapping.Unallocated(offset, stop - offset)
                        : Mapping.Zero.unreserved(offset, stop - offset);
            }
        }
    }

    /** Whether a block in {@code state} shows the parent: not present or undefined, on a differencing disk. */
    private boolean fallsThrough(int state) {
        return parentName != null && (state == VhdxFields.NOT_PRESENT || state == VhdxFields.UNDEFINED);
    }

    /** A run of sectors of a partially present block with the same sector bitmap bit. */
    private Mapping partial(long block, long entry, long offset, long stop) throws IOException {
        long bitmapEntry = bat.entry(bat.bitmapIndex(block));
        int sectorSize = meta.logicalSectorSize();
        long first = (offset - blockStart(block)) / sectorSize;
        long last = (stop - blockStart(block) + sectorSize - 1) / sectorSize;
        long bit = (block % bat.chunkRatio()) * sectorsPerBlock + first;
        int n = (int) Math.min(last - first, 1 << 18);
        ByteBuffer bits = VhdxFields.le((int) ((bit % 8 + n + 7) / 8));
        storage.read(bits, VhdxBat.offset(bitmapEntry) + bit / 8);
        int shift = (int) (bit % 8);
        boolean present = test(bits, shift);
        int run = 1;
        while (run < n && test(bits, shift + run) == present) {
            run++;
        }
        long runStop = Math.min(stop, blockStart(block) + (first + run) * sectorSize);
        if (!present) {
            return new Mapping.Unallocated(offset, runStop - offset);
        }
        return new Mapping.Data(offset, runStop - offset, storage,
                VhdxBat.offset(entry) + (offset - blockStart(block)));
    }

    private static boolean test(ByteBuffer bits, int i) {
        return (bits.get(i >>> 3) & (1 << (i & 7))) != 0;
    }

    private long blockStart(long block) {
        return block << blockShift;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(name + ": no data mapping for " + length + " bytes at offset " + offset
                    + " (size " + size + ")");
        }
        startSession();
        long block = offset >>> blockShift;
        long end = Math.min(Math.min(offset + length, size), blockStart(block + 1));
        long entry = bat.payload(block);
        if (VhdxBat.state(entry) == VhdxFields.FULLY_PRESENT) {
            return WriteTicket.of(inPlace(entry, block, offset, end));
        }
        lock.lock();
        boolean handedOver = false;
        try {
            entry = bat.payload(block);
            if (VhdxBat.state(entry) == VhdxFields.FULLY_PRESENT) {
                return WriteTicket.of(inPlace(entry, block, offset, end));
            }
            WriteTicket t = allocate(block, offset, end);
            handedOver = true;
            return t;
        } finally {
            if (!handedOver) {
                lock.unlock();
            }
        }
    }

    private Mapping.Data inPlace(long entry, long block, long offset, long end) {
        return new Mapping.Data(offset, end - offset, storage, VhdxBat.offset(entry) + (offset - blockStart(block)));
    }

    /**
     * Before the first write of this open: new file and data write GUIDs in the header (synced), so that a reader
     * comparing them sees that the disk changed.
     */
    private void startSession() throws IOException {
        if (sessionStarted) {
            return;
        }
        lock.lock();
        try {
            if (!sessionStarted) {
                // both slots, as QEMU writes them, so that neither keeps an older picture
                UUID fileWrite = UUID.randomUUID();
                headers.update(fileWrite, UUID.randomUUID(), VhdxFields.NIL);
                headers.update(fileWrite, UUID.randomUUID(), VhdxFields.NIL);
                sessionStarted = true;
            }
        } finally {
            lock.unlock();
        }
    }

    /** A new block at the end of the file for a write of {@code [offset, end)} (lock held). */
    private WriteTicket allocate(long block, long offset, long end) throws IOException {
        long oldSize = storage.size();
        long at = VhdxFields.roundUp(oldSize, VhdxFields.MIB);
        long newSize = at + blockSize;
        if (at >>> 20 >= 1L << 44) {
            throw new CorruptImageException(name, at, "no BAT entry can name a block at offset " + at);
        }
        storage.resize(newSize, Preallocation.OFF); // new space reads as zero, as the block did
        Mapping.Data mapping = new Mapping.Data(offset, end - offset, storage, at + (offset - blockStart(block)));
        return new AllocatingWriteTicket(mapping, lock) {
            @Override
            protected void onCommit() throws IOException {
                storage.sync(); // the data before the BAT entry that points at it
                setEntry(bat.payloadIndex(block), VhdxBat.entry(VhdxFields.FULLY_PRESENT, at));
            }

            @Override
            protected void onAbort() throws IOException {
                if (storage.size() == newSize) {
                    storage.resize(oldSize, Preallocation.OFF);
                }
            }
        };
    }

    /**
     * Changes BAT entry {@code index} through the log (lock held): the header names a new log, the log entry holding
     * the BAT page is synced, the page written in place and synced, and the log GUID cleared. A crash at any point
     * leaves either the old entry or a log whose replay writes the new one.
     */
    private void setEntry(long index, long value) throws IOException {
        long old = bat.entry(index);
        bat.set(index, value);
        try {
            ByteBuffer page = bat.page(index);
            long pageOffset = batOffset + index / 512 * 4096;
            VhdxHeader h = headers.current();
            long logLength = h.logLength();
            if (logPosition + 2L * VhdxLog.SECTOR > logLength) {
                logPosition = 0;
            }
            UUID guid = UUID.randomUUID();
            headers.setLog(guid);
            storage.write(VhdxLog.dataEntry(logPosition, logSequence, guid, storage.size(), pageOffset, page),
                    h.logOffset() + logPosition);
            storage.sync();
            storage.write(page.clear(), pageOffset);
            storage.sync();
            // cleared in both slots (as QEMU does): a slot still naming this log would replay this old page over
            // later changes if it ever became current again
            headers.setLog(VhdxFields.NIL);
            headers.setLog(VhdxFields.NIL);
            logPosition += 2L * VhdxLog.SECTOR;
            logSequence++;
        } catch (IOException | RuntimeException e) {
            bat.set(index, old);
            throw e;
        }
    }

    /**
     * {@inheritDoc} A block that holds no data reads as zero already (on a disk without a parent): such ranges are
     * handled without allocating. QEMU's vhdx driver has no zero writes, so a request that must not fall back to
     * writing zeroes ({@link ZeroFlag#NO_FALLBACK}) is refused, as qemu-io's {@code write -z -n} is.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        ensureWritable(offset);
        if (flags.contains(ZeroFlag.NO_FALLBACK) || parentName != null) {
            return 0;
        }
        long end = offset + Math.min(length, size - offset);
        long pos = offset;
        while (pos < end) {
            long block = pos >>> blockShift;
            int state = VhdxBat.state(bat.payload(block));
            if (state == VhdxFields.FULLY_PRESENT || state == VhdxFields.PARTIALLY_PRESENT) {
                break;
            }
            pos = Math.min(end, blockStart(block + 1));
        }
        return pos - offset;
    }

    @Override
    public void flush() throws IOException {
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    @Override
    public void close() {
    }

    /**
     * {@inheritDoc} As qemu-img's: a log replayed when the image was opened for the repair counts as a fixed
     * corruption; BAT entries naming blocks past the end of the file are corruptions (found when opened for check).
     */
    @Override
    public CheckReport check(Repair repair) {
        return new CheckReport(name, "vhdx", 0, checkMessages.size(), 0, replayedOnOpen ? 1 : 0, 0, 0, 0, 0, 0, 0,
                checkMessages, Optional.empty());
    }

    @Override
    public Map<String, Object> formatSpecific() {
        return Map.of();
    }

    private void ensureWritable(long offset) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(name, offset, "image is opened read-only");
        }
        if (parentName != null) {
            throw new UnsupportedFeatureException(name, Feature.OTHER, "vhdx differencing writes",
                    "writing to a differencing VHDX is not supported (its sector bitmaps are read only)");
        }
    }

    @Override
    public String toString() {
        return "vhdx on " + name;
    }
}
