package imago.cow.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingFacts;
import imago.api.spi.BackingReader;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * One open cow image: a header, the bitmap (in memory) and the data area, where sector {@code n} lives
 * at {@code dataOffset + n * sectorSize} when its bit is set. Guest byte {@code x} is therefore host
 * byte {@code dataOffset + x}: every run of present sectors is one {@link Mapping.Data}, every run of
 * absent ones one {@link Mapping.Unallocated}.
 *
 * <p>Writes: {@link #ensureDataMapping} copies the uncovered part of a partially written absent sector
 * from below into the data area; the caller writes the data; {@link #completeWrite} syncs the data (or
 * only flushes it, with {@code cow.sync-data=off}) and only then sets the bits, in memory (for readers) and in the 512-byte bitmap sectors
 * of the file that hold them. So a crash never leaves a bit set over data that was not written.
 * Concurrent writes that copy-on-write the same sector are serialised by a per-sector claim held from
 * {@code ensureDataMapping} to {@code completeWrite}, so one's copy cannot overwrite the other's data.
 * Concurrent bitmap updates are merged: a bitmap sector is marked dirty after its bits are set in
 * memory, and whoever writes it next writes all its bits.
 */
final class CowInstance implements FormatInstance {
    /** The largest in-memory bitmap: 512 MiB, for 2 TiB of 512-byte sectors. */
    static final long MAX_BITMAP_BYTES = 512L << 20;
    /** Bitmap updates are written in whole sectors of the file. */
    private static final int BITMAP_SECTOR = 512;
    private static final int LOAD_CHUNK = 1 << 20;

    /** What to do when the backing file's size or mtime differ from the recorded ones (UML checks). */
    enum CheckBacking { OFF, WARN, REFUSE }

    private final Storage storage;
    private final CowHeader header;
    private final boolean writable;
    private final CheckBacking checkBacking;
    /** Sync (not just flush) the data before setting bits: survives power loss, at one fdatasync per write. */
    private final boolean syncData;
    private final int shift;
    private final long size;
    private final long dataOffset;
    private final long bitmapOffset;
    /** On-disk bitmap bytes that may be read and written: up to the data area. */
    private final long bitmapBytes;
    private final CowBitmap bitmap;

    private final ReentrantLock claimLock = new ReentrantLock();
    private final Condition claimReleased = claimLock.newCondition();
    private final Set<Long> claimed = new HashSet<>();

    /** Guards writes of bitmap sectors. */
    private final ReentrantLock bitmapLock = new ReentrantLock();
    /** File sectors (offset / 512) of the bitmap whose in-memory bits have not been written. */
    private final ConcurrentSkipListSet<Long> dirty = new ConcurrentSkipListSet<>();

    private CowInstance(Storage storage, CowHeader header, boolean writable, CheckBacking checkBacking,
            boolean syncData, long bitmapBytes, CowBitmap bitmap) {
        this.storage = storage;
        this.header = header;
        this.writable = writable;
        this.checkBacking = checkBacking;
        this.syncData = syncData;
        this.shift = Integer.numberOfTrailingZeros(header.sectorSize());
        this.size = header.size();
        this.dataOffset = header.dataOffset();
        this.bitmapOffset = header.bitmapOffset();
        this.bitmapBytes = bitmapBytes;
        this.bitmap = bitmap;
    }

    /**
     * Loads the bitmap of {@code header} from {@code storage}.
     *
     * @throws ImageLimitException if the bitmap is larger than {@link #MAX_BITMAP_BYTES}
     * @throws IOException if it cannot be read
     */
    static CowInstance open(Storage storage, CowHeader header, boolean writable, CheckBacking checkBacking,
            boolean syncData) throws IOException {
        long wanted = CowFields.ceilDiv(header.sectors(), 8);
        if (wanted > MAX_BITMAP_BYTES) {
            throw new ImageLimitException(storage.name(), header.bitmapOffset(), "the bitmap of " + wanted
                    + " bytes (for an image of " + header.size() + " bytes) is larger than the limit of "
                    + MAX_BITMAP_BYTES + " bytes");
        }
        // UML v1/v2 compute the bitmap one byte short when the sector count is not a multiple of 8; the
        // missing bits are used where the file has room before the data area
        long bytes = Math.min(wanted, header.dataOffset() - header.bitmapOffset());
        CowBitmap bitmap = new CowBitmap(Math.min(header.sectors(), bytes * 8));
        long[] words = bitmap.words();
        long done = 0;
        int word = 0;
        while (done < bytes) {
            int n = (int) Math.min(LOAD_CHUNK, bytes - done);
            ByteBuffer buf = ByteBuffer.allocate((int) CowFields.roundUp(n, 8)).order(ByteOrder.LITTLE_ENDIAN);
            storage.read(buf.limit(n), header.bitmapOffset() + done);
            LongBuffer longs = buf.clear().asLongBuffer();
            int count = Math.min(longs.remaining(), words.length - word);
            longs.get(words, word, count);
            word += count;
            done += n;
        }
        long bits = bitmap.bits();
        if ((bits & 63) != 0 && words.length > 0) {
            words[words.length - 1] &= (1L << bits) - 1; // bits past the last sector are not ours
        }
        return new CowInstance(storage, header, writable, checkBacking, syncData, bytes, bitmap);
    }

    /** The parsed header. */
    CowHeader header() {
        return header;
    }

    /** The backing check the opener asked for. */
    CheckBacking checkBacking() {
        return checkBacking;
    }

    /**
     * UML's check of the backing file (its {@code backing_file_mismatch}): the backing file's size must
     * equal the header's size and its mtime the recorded one. What the {@code cow.check-backing} open
     * option asks for: nothing ({@code off}), a warning through {@code warn}, or refusal.
     *
     * <p>The size is compared in whole 512-byte sectors: the backing image's size is a virtual size, and
     * a raw file's is its length rounded up to whole sectors (as QEMU counts it), while UML records the
     * file's exact length.
     *
     * @param backingSize the backing image's virtual size in bytes
     * @param backingMtime the backing file's mtime in seconds, if known
     * @param warn receives the mismatch message in {@code warn} mode
     * @throws CorruptImageException in {@code refuse} mode, on a mismatch
     */
    void checkBacking(long backingSize, OptionalLong backingMtime, Consumer<String> warn)
            throws CorruptImageException {
        if (checkBacking == CheckBacking.OFF || header.backingFile().isEmpty()) {
            return;
        }
        String mismatch = null;
        if (backingSize != size && backingSize != CowFields.roundUp(size, CowFields.SECTOR)) {
            mismatch = "Size mismatch (" + size + " vs " + backingSize + ") of COW header vs backing file '"
                    + header.backingFile() + "'";
        } else if (backingMtime.isPresent() && backingMtime.getAsLong() != header.mtime()) {
            mismatch = "mtime mismatch (" + header.mtime() + " vs " + backingMtime.getAsLong()
                    + ") of COW header vs backing file '" + header.backingFile() + "'";
        }
        if (mismatch == null) {
            return;
        }
        if (checkBacking == CheckBacking.REFUSE) {
            throw new CorruptImageException(storage.name(), mismatch);
        }
        warn.accept(storage.name() + ": " + mismatch);
    }

    /** UML's check, as the probe module reports the backing image; a mismatch is logged in {@code warn} mode. */
    @Override
    public void checkBacking(BackingFacts backing) throws IOException {
        OptionalLong mtime = backing.modified().map(t -> OptionalLong.of(t.getEpochSecond()))
                .orElse(OptionalLong.empty());
        checkBacking(backing.size(), mtime, LOG::warn);
    }

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CowInstance.class);

    /** How many sectors are present in this file. */
    long presentSectors() {
        return bitmap.count();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(storage.name() + ": no mapping for " + maxLength + " bytes at offset "
                    + offset);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, size - offset);
        long first = offset >>> shift;
        long endSector = sectorsUpTo(end);
        long limit = Math.min(endSector, bitmap.bits());
        if (first >= limit) {
            return new Mapping.Unallocated(offset, end - offset);
        }
        boolean present = bitmap.get(first);
        long runEnd = bitmap.nextDiffering(first + 1, limit, present);
        if (!present && runEnd == limit) {
            runEnd = endSector; // sectors without a bit (UML v1/v2's short bitmap) are absent
        }
        long stop = Math.min(end, runEnd << shift);
        return present ? new Mapping.Data(offset, stop - offset, storage, dataOffset + offset)
                : new Mapping.Unallocated(offset, stop - offset);
    }

    /** The number of sectors that hold bytes below {@code end}. */
    private long sectorsUpTo(long end) {
        return (end >>> shift) + ((end & ((1L << shift) - 1)) == 0 ? 0 : 1);
    }

    /**
     * {@inheritDoc} The whole range maps linearly into the data area. A partially covered first or last
     * sector that is not present yet gets the rest of its bytes from {@code below} first, under a claim
     * that the ticket releases; its commit sets the sectors' bits.
     */
    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable();
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(storage.name() + ": no data mapping for " + length + " bytes at offset "
                    + offset + " (size " + size + ")");
        }
        long end = offset + Math.min(length, size - offset);
        long last = (end - 1) >>> shift;
        if (last >= bitmap.bits()) {
            throw new UnsupportedFeatureException(storage.name(), Feature.LIMITS, "writing past the bitmap", "cannot write sector "
                    + last + ": this " + header.variant().displayName() + " image's bitmap has no bit for it "
                    + "(UML computed the bitmap one byte short); use convert to copy it");
        }
        long mask = (1L << shift) - 1;
        long head = (offset & mask) != 0 ? offset >>> shift : -1;
        long tail = (end & mask) != 0 ? end >>> shift : -1;
        long[] claims = partialSectors(offset, end);
        for (long s : claims) {
            if (s >= 0) {
                claim(s);
            }
        }
        try {
            if (head >= 0 && !bitmap.get(head)) {
                copyBelow(head << shift, offset, below);
            }
            if (tail >= 0 && !bitmap.get(tail)) {
                copyBelow(end, (tail + 1) << shift, below);
            }
        } catch (IOException | RuntimeException e) {
            release(claims);
            throw e;
        }
        return new Ticket(new Mapping.Data(offset, end - offset, storage, dataOffset + offset));
    }

    /** A write's ticket: holds the claims on its partial sectors until it is closed. */
    private final class Ticket implements WriteTicket {
        private final Mapping.Data mapping;
        private boolean released;

        Ticket(Mapping.Data mapping) {
            this.mapping = mapping;
        }

        @Override
        public Mapping.Data mapping() {
            return mapping;
        }

        /** Flushes the data, then sets the bits of every sector the write touched (in memory and in the file). */
        @Override
        public void commit() throws IOException {
            commitSectors(mapping.offset() >>> shift, sectorsUpTo(mapping.offset() + mapping.length()));
        }

        /** Releases the claims; without a commit no bit was set, so the sectors stay absent. */
        @Override
        public void close() {
            if (!released) {
                released = true;
                release(partialSectors(mapping.offset(), mapping.offset() + mapping.length()));
            }
        }
    }

    /**
     * The sectors a write of {@code [offset, end)} covers only partly: {head or -1, tail or -1}, the tail
     * -1 when it is the head's sector too (one claim covers both).
     */
    private long[] partialSectors(long offset, long end) {
        long mask = (1L << shift) - 1;
        long head = (offset & mask) != 0 ? offset >>> shift : -1;
        long tail = (end & mask) != 0 ? end >>> shift : -1;
        return new long[] {head, tail == head ? -1 : tail};
    }

    /** Copies guest bytes {@code [from, to)} from below into the data area. */
    private void copyBelow(long from, long to, BackingReader below) throws IOException {
        if (from >= to) {
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate((int) (to - from));
        below.read(buf, from);
        storage.write(buf.flip(), dataOffset + from);
    }

    private void claim(long sector) {
        claimLock.lock();
        try {
            while (!claimed.add(sector)) {
                claimReleased.awaitUninterruptibly();
            }
        } finally {
            claimLock.unlock();
        }
    }

    private void release(long[] sectors) {
        claimLock.lock();
        try {
            for (long s : sectors) {
                if (s >= 0) {
                    claimed.remove(s);
                }
            }
            claimReleased.signalAll();
        } finally {
            claimLock.unlock();
        }
    }

    /** Marks sectors {@code [from, to)} present: data first, then the bits. */
    private void commitSectors(long from, long to) throws IOException {
        if (bitmap.allSet(from, to)) {
            return;
        }
        // the data must reach the file before any bit that announces it
        if (syncData) {
            storage.sync();
        } else {
            storage.flush();
        }
        bitmap.set(from, to);
        long firstSector = (bitmapOffset + (from >>> 3)) / BITMAP_SECTOR;
        long lastSector = (bitmapOffset + ((to - 1) >>> 3)) / BITMAP_SECTOR;
        for (long s = firstSector; s <= lastSector; s++) {
            dirty.add(s);
        }
        writeDirty(firstSector, lastSector + 1);
    }

    /**
     * Writes the dirty bitmap sectors in {@code [from, to)} (file sector numbers) from memory. A sector
     * another thread already took out of {@link #dirty} was written with these bits: it copied memory
     * after taking it, which was after the bits were set and the sector marked.
     */
    private void writeDirty(long from, long to) throws IOException {
        bitmapLock.lock();
        try {
            long s = from;
            while (s < to) {
                Long next = dirty.ceiling(s);
                if (next == null || next >= to) {
                    return;
                }
                long runStart = next;
                long runEnd = runStart;
                while (runEnd < to && dirty.remove(runEnd)) {
                    runEnd++;
                }
                try {
                    writeBitmapRange(runStart * BITMAP_SECTOR, runEnd * BITMAP_SECTOR);
                } catch (IOException | RuntimeException e) {
                    for (long r = runStart; r < runEnd; r++) {
                        dirty.add(r);
                    }
                    throw e;
                }
                s = runEnd;
            }
        } finally {
            bitmapLock.unlock();
        }
    }

    /** Writes the bitmap's bytes in file range {@code [from, to)}, clipped to the bitmap. */
    private void writeBitmapRange(long from, long to) throws IOException {
        long start = Math.max(from, bitmapOffset);
        long stop = Math.min(to, bitmapOffset + bitmapBytes);
        if (start >= stop) {
            return;
        }
        byte[] bytes = new byte[(int) (stop - start)];
        bitmap.copyBytes(start - bitmapOffset, bytes);
        storage.write(ByteBuffer.wrap(bytes), start);
    }

    /** {@inheritDoc} Nothing: the bits stay set and the data correct. */
    @Override
    public void discard(long offset, long length) throws IOException {
        ensureWritable();
    }

    /** Writes any bitmap sectors a failed update left dirty, then flushes the storage. */
    @Override
    public void flush() throws IOException {
        if (writable && !dirty.isEmpty()) {
            writeDirty(0, Long.MAX_VALUE);
        }
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    @Override
    public List<Dependency> dependencies() {
        return header.backingFile().isEmpty() ? List.of()
                : List.of(new Dependency.BackingFile(header.backingFile(), Optional.empty()));
    }

    /**
     * {@inheritDoc} The variant, the recorded backing mtime (which UML compares with the backing file's),
     * and the layout.
     */
    @Override
    public Map<String, Object> formatSpecific() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("variant", header.variant().displayName());
        m.put("backing-mtime", header.mtime());
        m.put("check-backing", checkBacking.name().toLowerCase(Locale.ROOT));
        m.put("sector-size", header.sectorSize());
        if (header instanceof CowHeaderUmlV3 v3) {
            m.put("alignment", v3.alignment());
        }
        m.put("bitmap-offset", bitmapOffset);
        m.put("data-offset", dataOffset);
        return m;
    }

    @Override
    public void close() {
        // nothing cached: every bitmap update was written when it was made (or flush() retried it)
    }

    private void ensureWritable() throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), "image is opened read-only");
        }
    }

    @Override
    public String toString() {
        return "cow " + header.variant().displayName() + " on " + Objects.toString(storage.name());
    }
}
