package imago.parallels.internal;

import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.BlockTable;
import imago.api.spi.Capability;
import imago.api.spi.Checker;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * One open Parallels image. Clusters are found through the shared {@link BlockTable}; a new one goes at the end of
 * the data area (QEMU's {@code data_end}), zeroed, and is named by its catalog entry only after a flush made it
 * durable. A writable open sets the in-use mark (synced) before anything else changes, and a clean close clears
 * it and cuts the file at the end of the data area, as QEMU does.
 */
final class ParallelsInstance implements FormatInstance, BlockTable.Blocks {
    private final ParallelsCheck checker;
    private final Storage storage;
    private final String name;
    private final ParallelsHeader header;
    private final boolean writable;
    private final long size;
    private final long clusterSize;
    private final long entryUnit;
    private final BlockTable table;
    /** Where the next cluster goes (guarded by the table's lock). */
    private long dataEnd;
    private boolean closed;

    /**
     * Opens the layer over {@code header}, reading its catalog. The table is handed this instance as its
     * {@link BlockTable.Blocks} before the constructor ends: reading it calls none of them.
     */
    ParallelsInstance(Storage storage, ParallelsHeader header, boolean writable) throws IOException {
        this.storage = storage;
        this.name = storage.name();
        this.header = header;
        this.writable = writable;
        this.size = header.sectors() * ParallelsHeader.SECTOR;
        this.clusterSize = header.clusterSize();
        this.entryUnit = header.entryUnit();
        this.table = BlockTable.read(storage, ParallelsHeader.LENGTH, header.batEntries(), ByteOrder.LITTLE_ENDIAN,
                clusterSize, this);
        this.checker = new ParallelsCheck(storage, header, table, writable);
    }

    /** {@inheritDoc} Hands out the {@link Checker}. */
    @Override
    public <C extends Capability> Optional<C> capability(Class<C> type) {
        return type.isInstance(checker) ? Optional.of(type.cast(checker)) : FormatInstance.super.capability(type);
    }

    BlockTable table() {
        return table;
    }

    /** Makes new clusters go at {@code end} or later. */
    void allocateFrom(long end) {
        dataEnd = Math.max(dataEnd, end);
    }

    /** Sets or clears the in-use mark in the file, and syncs it. */
    void markInUse(boolean inUse) throws IOException {
        ByteBuffer mark = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(0, inUse ? ParallelsHeader.IN_USE : 0);
        storage.write(mark, ParallelsHeader.IN_USE_AT);
        storage.sync();
    }

    @Override
    public long hostOffset(int entry) {
        return entry == 0 ? -1 : Integer.toUnsignedLong(entry) * entryUnit;
    }

    /** Unallocated clusters fall through (to zeroes: imago opens no backing file for parallels). */
    @Override
    public Mapping unallocated(long offset, long length) {
        return new Mapping.Unallocated(offset, length);
    }

    @Override
    public int allocate(int block) throws IOException {
        long at = dataEnd;
        long entry = at / entryUnit;
        if (at % entryUnit != 0 || entry > 0xFFFF_FFFFL) {
            throw new ImageLimitException(name, at, "no catalog entry can name a cluster at offset " + at);
        }
        storage.writeZeroes(at, clusterSize, false);
        dataEnd = at + clusterSize;
        return (int) entry;
    }

    @Override
    public void abandon(int block, int entry) {
        if (hostOffset(entry) + clusterSize == dataEnd) {
            dataEnd -= clusterSize;
        }
    }

    @Override
    public long size() {
        return size;
    }

    /** None: qemu-img info shows no cluster size for parallels (QEMU's driver has no get_info). */
    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.empty();
    }

    @Override
    public OptionalInt zeroAlignment() {
        return OptionalInt.of((int) clusterSize);
    }

    @Override
    public Mapping mapping(long offset, long maxLength) {
        return table.mapping(offset, maxLength, size);
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(name, offset, "image is opened read-only");
        }
        return table.beginWrite(offset, length, size);
    }

    /**
     * {@inheritDoc} Unallocated clusters read as zero already; an allocated one gets zeroes written (QEMU 7.2's
     * parallels driver has no zero writes, so {@link ZeroFlag#NO_FALLBACK} is refused as qemu-io refuses it).
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below) {
        if (flags.contains(ZeroFlag.NO_FALLBACK)) {
            return 0;
        }
        long end = Math.min(size, offset + length);
        long pos = offset;
        while (pos < end && table.hostOffset(pos / clusterSize) < 0) {
            pos = Math.min(end, (pos / clusterSize + 1) * clusterSize);
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

    /**
     * Writes the catalog, sets the file's length to the end of the data area (as QEMU's close does: it cuts what an
     * allocation left past it, and grows a file a check found too short), and then clears the in-use mark.
     */
    @Override
    public void close() throws IOException {
        if (!writable || closed) {
            return;
        }
        closed = true;
        table.flush();
        storage.sync();
        if (storage.size() != dataEnd) {
            storage.resize(dataEnd, Preallocation.OFF);
            storage.sync();
        }
        markInUse(false);
    }

    @Override
    public String toString() {
        return "parallels on " + name;
    }
}
