package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A sparse extent: guest bytes in grains that a grain directory and grain tables map into the file. A table entry
 * of 0 leaves the grain to the parent (or zeroes), 1 means zeroes when the extent has zeroed-grain entries, anything
 * else is the grain's sector; compressed extents (streamOptimized) keep each grain as a zlib stream.
 *
 * <p>Writes, as QEMU does them: a grain not yet in the file is appended at the end of the file, aligned to the
 * grain size; the parts of it the write does not cover are copied from below first (the parent, or zeroes for a
 * zeroed grain or without one); the caller writes the data; the ticket's commit points the grain table entry at it
 * in memory, and {@link #flush} makes the grains durable before any table reaches the file (then the redundant
 * tables, then, for new tables, the directory). Concurrent writes to one new grain wait for each other (claims).
 * Compressed extents are written by a {@link VmdkStreamWriter}.
 */
final class VmdkSparseExtent implements VmdkExtent, VmdkStreamWriter.Target {
    /** Grains one mapping looks at, at most: keeps each call bounded on huge images. */
    private static final int MAX_RUN_GRAINS = 1 << 16;
    /** Grains one allocating write takes at once, at most. */
    private static final int MAX_ALLOCATION_GRAINS = 256;

    private final Storage storage;
    private final String resource;
    private final VmdkSparseLayout layout;
    private final VmdkGrainTables tables;
    private final boolean writable;
    private final int grainBytes;
    private final long size;
    private final VmdkCompressedGrains compressedGrains;
    private final VmdkStreamWriter stream;

    /** The file's size as this extent has made it (changed under {@link #allocation}). */
    private volatile long fileSize;
    /** Where the next grain goes, in sectors; past every grain the tables name once {@code pastMappedGrains}. */
    private long nextSector;
    private boolean pastMappedGrains;
    private final ReentrantLock allocation = new ReentrantLock();

    private final ReentrantLock claimLock = new ReentrantLock();
    private final Condition claimReleased = claimLock.newCondition();
    private final Set<Long> claimed = new HashSet<>();

    VmdkSparseExtent(Storage storage, VmdkSparseLayout layout, VmdkGrainTables tables, boolean writable,
            long fileSize, VmdkStreamWriter.Factory streamFactory) throws IOException {
        this.storage = storage;
        this.resource = storage.name();
        this.layout = layout;
        this.tables = tables;
        this.writable = writable;
        this.grainBytes = layout.grainBytes();
        this.size = layout.bytes();
        this.fileSize = fileSize;
        long fileSectors = (fileSize + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
        this.nextSector = (fileSectors + layout.grainSectors() - 1) / layout.grainSectors() * layout.grainSectors();
        this.compressedGrains = layout.compressed()
                ? new VmdkCompressedGrains(storage, grainBytes, layout.markers(), () -> this.fileSize) : null;
        this.stream = layout.compressed() && writable ? streamFactory.create(this) : null;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Storage storage() {
        return storage;
    }

    @Override
    public VmdkSparseLayout layout() {
        return layout;
    }

    @Override
    public VmdkGrainTables tables() {
        return tables;
    }

    @Override
    public OptionalInt grainSize() {
        return OptionalInt.of(grainBytes);
    }

    @Override
    public boolean compressed() {
        return layout.compressed();
    }

    /** What one grain table entry means. */
    enum Kind { UNALLOCATED, ZERO, DATA, COMPRESSED }

    /** The kind of entry {@code e} (unsigned). */
    Kind kind(long e) {
        if (e == 0) {
            return Kind.UNALLOCATED;
        }
        if (e == 1 && layout.zeroGrains()) {
            return Kind.ZERO;
        }
        return layout.compressed() ? Kind.COMPRESSED : Kind.DATA;
    }

    @Override
    public boolean writable(long grain) throws IOException {
        Kind k = kind(entry(grain));
        return k == Kind.UNALLOCATED || k == Kind.ZERO;
    }

    /** Grain {@code grain}'s entry (past the end of a file cut short, a grain reads as zeroes, as in QEMU). */
    long entry(long grain) throws IOException {
        if (grain / tables.gtesPerGt() >= tables.tableCount()) {
            // only a COWD header gives the directory's length itself; QEMU fails such a read too
            throw new CorruptImageException(resource, -1, "the grain directory of " + tables.tableCount()
                    + " entries has none for grain " + grain);
        }
        return tables.entry(grain);
    }

    @Override
    public Mapping mapping(long base, long offset, long maxLength) throws IOException {
        if (stream != null) {
            stream.drain(); // grains still held for ordering are only mapped once in the file
        }
        long end = Math.min(size, offset + maxLength);
        long grain = offset / grainBytes;
        long first = entry(grain);
        Kind kind = kind(first);
        long pos = Math.min(end, (grain + 1) * grainBytes);
        int seen = 1;
        while (pos < end && seen < MAX_RUN_GRAINS) {
            long g = pos / grainBytes;
            int table = (int) (g / tables.gtesPerGt());
            if (kind == Kind.UNALLOCATED && table < tables.tableCount() && !tables.hasTable(table)) {
                pos = Math.min(end, (long) (table + 1) * tables.gtesPerGt() * grainBytes);
                seen++;
                continue;
            }
            long e = entry(g);
            if (kind(e) != kind || kind == Kind.DATA && e != first + (g - grain) * layout.grainSectors()) {
                break;
            }
            pos = Math.min(end, (g + 1) * grainBytes);
            seen++;
        }
        long length = pos - offset;
        return switch (kind) {
            case UNALLOCATED -> new Mapping.Unallocated(base + offset, length);
            case ZERO -> Mapping.Zero.unreserved(base + offset, length);
            case COMPRESSED -> new Mapping.Special(base + offset, length, "compressed");
            case DATA -> new Mapping.Data(base + offset, length, storage,
                    first * VmdkDescriptor.SECTOR + offset % grainBytes);
        };
    }

    @Override
    public void readSpecial(ByteBuffer dst, long offset) throws IOException {
        if (compressedGrains == null) {
            throw new IllegalStateException(resource + ": this extent has no compressed grains");
        }
        compressedGrains.read(dst, offset, size, (pos, at) -> {
            long grain = pos / grainBytes;
            long e = entry(grain);
            at[0] = tables.entryOffset(grain);
            if (kind(e) != Kind.COMPRESSED) {
                throw new CorruptImageException(resource, at[0], "grain " + grain + " is no longer compressed data");
            }
            return e;
        });
    }

    /** Decodes compressed grain {@code grain} (for checks): its decoded length. */
    int decodeGrain(long grain, ByteBuffer out) throws IOException {
        return compressedGrains.decode(entry(grain), tables.entryOffset(grain), out);
    }

    // ---------------------------------------------------------------- writes

    @Override
    public WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(resource, "the extent is read-only");
        }
        if (stream != null) {
            return stream.beginWrite(base, offset, length, below);
        }
        long end = Math.min(size, offset + length);
        long grain = offset / grainBytes;
        claim(grain);
        boolean handedOff = false;
        try {
            long e = entry(grain);
            Kind kind = kind(e);
            if (kind == Kind.DATA) {
                long pos = Math.min(end, (grain + 1) * grainBytes);
                checkInPlace(grain, e);
                while (pos < end) {
                    long g = pos / grainBytes;
                    long next = entry(g);
                    if (kind(next) != Kind.DATA || next != e + (g - grain) * layout.grainSectors()) {
                        break;
                    }
                    checkInPlace(g, next);
                    pos = Math.min(end, (g + 1) * grainBytes);
                }
                // an allocated grain is never freed, so it may be written without holding the claim
                return WriteTicket.of(new Mapping.Data(base + offset, pos - offset, storage,
                        e * VmdkDescriptor.SECTOR + offset % grainBytes));
            }
            WriteTicket t = allocate(base, offset, end, grain, kind == Kind.ZERO, below);
            handedOff = true;
            return t;
        } finally {
            if (!handedOff) {
                release(grain, 1);
            }
        }
    }

    /** Guest data goes in place only where grains may be: never over the header and tables. */
    private void checkInPlace(long grain, long sector) throws CorruptImageException {
        if (sector < layout.overhead()) {
            throw new CorruptImageException(resource, tables.entryOffset(grain), "grain " + grain + " points at sector "
                    + sector + ", inside the extent's metadata (grains start at sector " + layout.overhead() + ")");
        }
    }

    /**
     * Allocates grains {@code grain}.. (the first claimed) up to {@code end} while they are unallocated or zeroed
     * and free to claim, at the end of the file; copies what the write does not cover from below.
     */
    private WriteTicket allocate(long base, long offset, long end, long grain, boolean zeroed, BackingReader below)
            throws IOException {
        int count = 1;
        boolean[] zero = new boolean[MAX_ALLOCATION_GRAINS];
        zero[0] = zeroed;
        long lastEnd = (grain + 1) * grainBytes;
        while (lastEnd < end && count < MAX_ALLOCATION_GRAINS && tryClaim(grain + count)) {
            Kind k = kind(entry(grain + count));
            if (k != Kind.UNALLOCATED && k != Kind.ZERO) {
                release(grain + count, 1);
                break;
            }
            zero[count] = k == Kind.ZERO;
            count++;
            lastEnd += grainBytes;
        }
        int claimedCount = count;
        try {
            long writeEnd = Math.min(end, lastEnd);
            long sector = reserve(count);
            long host = sector * VmdkDescriptor.SECTOR;
            long firstStart = grain * grainBytes;
            if (offset > firstStart) {
                copyBelow(base, firstStart, offset, host, zero[0], below);
            }
            long lastStart = lastEnd - grainBytes;
            if (writeEnd < lastEnd) {
                copyBelow(base, writeEnd, lastEnd, host + (lastStart - firstStart) + (writeEnd - lastStart),
                        zero[count - 1], below);
            }
            Mapping.Data data = new Mapping.Data(base + offset, writeEnd - offset, storage,
                    host + (offset - firstStart));
            return new WriteTicket() {
                private boolean committed;

                @Override
                public Mapping.Data mapping() {
                    return data;
                }

                @Override
                public void commit() throws IOException {
                    for (int i = 0; i < claimedCount; i++) {
                        tables.set(grain + i, (int) (sector + i * layout.grainSectors()));
                    }
                    committed = true;
                }

                @Override
                public void close() {
                    // an aborted write leaves its grains unreferenced at the end of the file, as QEMU does
                    release(grain, claimedCount);
                }
            };
        } catch (IOException | RuntimeException | Error e) {
            release(grain, claimedCount);
            throw e;
        }
    }

    /** Writes guest bytes {@code [from, to)} of what lies below (or zeroes) at {@code host}. */
    private void copyBelow(long base, long from, long to, long host, boolean zeroed, BackingReader below)
            throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) (to - from));
        long inExtent = Math.max(0, Math.min(to, size) - from);
        if (!zeroed && inExtent > 0) {
            below.read(buf.slice(0, (int) inExtent), base + from);
        }
        storage.write(buf, host);
    }

    /** Takes {@code grains} grains' space at the end of the file; returns the first sector. */
    long reserve(int grains) throws IOException {
        allocation.lock();
        try {
            skipMappedGrains();
            long sector = nextSector;
            long end = sector + (long) grains * layout.grainSectors();
            if (end > 0xFFFF_FFFFL + 1) {
                throw new ImageLimitException(resource, "the extent file cannot grow past 2 TiB: grain table entries "
                        + "count 32-bit sectors");
            }
            nextSector = end;
            fileSize = Math.max(fileSize, end * VmdkDescriptor.SECTOR);
            return sector;
        } finally {
            allocation.unlock();
        }
    }

    /** Moves {@link #nextSector} past the grains the tables name, once (QEMU would write over those of a cut file). */
    private void skipMappedGrains() throws IOException {
        nextSector = pastMappedGrains ? nextSector
                : tables.pastMappedGrains(nextSector, fileSize, layout.grainSectors(), layout.compressed());
        pastMappedGrains = true;
    }

    /** Takes {@code bytes} (sector-aligned) at the end of the file for metadata; returns the byte offset. */
    long reserveBytes(long bytes) throws IOException {
        allocation.lock();
        try {
            skipMappedGrains();
            long sector = nextSector;
            long end = sector + (bytes + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
            if (end > 0xFFFF_FFFFL + 1) {
                throw new ImageLimitException(resource, "the extent file cannot grow past 2 TiB");
            }
            // the next grain starts on a grain boundary again, as QEMU aligns new grains
            nextSector = (end + layout.grainSectors() - 1) / layout.grainSectors() * layout.grainSectors();
            fileSize = Math.max(fileSize, end * VmdkDescriptor.SECTOR);
            return sector * VmdkDescriptor.SECTOR;
        } finally {
            allocation.unlock();
        }
    }

    /**
     * Takes {@code bytes} (a multiple of the sector size) at the end of the file for a compressed grain and returns
     * its first sector: the first of a session at a grain boundary, the next ones packed behind it (QEMU's
     * {@code next_cluster_sector} for compressed extents).
     */
    @Override
    public long reserveCompressed(long bytes) throws IOException {
        allocation.lock();
        try {
            skipMappedGrains();
            long sector = nextSector;
            long end = sector + bytes / VmdkDescriptor.SECTOR;
            if (end > 0xFFFF_FFFFL + 1) {
                throw new ImageLimitException(resource, "the extent file cannot grow past 2 TiB: grain table entries "
                        + "count 32-bit sectors");
            }
            nextSector = end;
            fileSize = Math.max(fileSize, end * VmdkDescriptor.SECTOR);
            return sector;
        } finally {
            allocation.unlock();
        }
    }

    /**
     * {@inheritDoc} With zeroed-grain entries, whole grains from a grain boundary are marked zero (a grain in the file
     * is left unreferenced, as QEMU leaves it); partial grains, and extents without such entries, are not handled.
     */
    @Override
    public long ensureZero(long offset, long length) throws IOException {
        if (!layout.zeroGrains() || !writable || offset % grainBytes != 0 || length < grainBytes) {
            return 0;
        }
        if (stream != null) {
            return stream.ensureZero(offset, length);
        }
        long grains = Math.min(length / grainBytes, MAX_ALLOCATION_GRAINS);
        long grain = offset / grainBytes;
        for (long i = 0; i < grains; i++) {
            claim(grain + i);
            try {
                if (kind(entry(grain + i)) != Kind.ZERO) {
                    tables.set(grain + i, 1);
                }
            } finally {
                release(grain + i, 1);
            }
        }
        return grains * grainBytes;
    }

    /**
     * Stores one grain compressed (streamOptimized): see {@link VmdkStreamWriter#writeCompressed}.
     *
     * @throws UnsupportedFeatureException if the grain was already written
     */
    void writeCompressed(long base, ByteBuffer grain, long offset) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(resource, "the extent is read-only");
        }
        stream.writeCompressed(base, grain, offset);
    }

    /**
     * Writes changed grain tables after making the grains durable (and, for a stream, what it still holds).
     *
     * @throws IOException if a write fails
     */
    @Override
    public void flush() throws IOException {
        if (stream != null) {
            stream.flush();
        }
        tables.flush(this::reserveBytes, () -> {
            storage.flush();
            storage.sync();
        });
        storage.flush();
    }

    // ---------------------------------------------------------------- claims

    void claim(long grain) throws IOException {
        claimLock.lock();
        try {
            while (claimed.contains(grain)) {
                claimReleased.awaitUninterruptibly();
            }
            claimed.add(grain);
        } finally {
            claimLock.unlock();
        }
    }

    private boolean tryClaim(long grain) {
        claimLock.lock();
        try {
            return claimed.add(grain);
        } finally {
            claimLock.unlock();
        }
    }

    void release(long grain, int count) {
        claimLock.lock();
        try {
            for (int i = 0; i < count; i++) {
                claimed.remove(grain + i);
            }
            claimReleased.signalAll();
        } finally {
            claimLock.unlock();
        }
    }

    /** Refuses what a compressed extent cannot do. */
    @Override
    public UnsupportedFeatureException refused(long guest, String why) {
        return new UnsupportedFeatureException(resource, Feature.OVERWRITES, "overwrites in streamOptimized",
                "cannot write at guest offset " + guest + ": " + why);
    }

    @Override
    public Map<String, Object> info(String format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", storage.name());
        m.put("format", format);
        m.put("virtual-size", size);
        m.put("cluster-size", (long) grainBytes);
        if (layout.compressed()) {
            m.put("compressed", true);
        }
        return m;
    }
}
