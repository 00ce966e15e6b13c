package imago.qcow.internal;

import imago.api.CorruptImageException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.AllocatingWriteTicket;
import imago.api.spi.BackingReader;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.TwoLevelTable;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * One open qcow (version 1) image. An L2 entry is 0 (unallocated: the backing file, or zeroes), a data cluster's
 * offset, or, with bit 63 set, a compressed cluster: its offset in the low {@code 63 - cluster_bits} bits and its
 * compressed length above them, raw deflate that must inflate to exactly one cluster (as QEMU reads it).
 *
 * <p>Writes to data clusters go in place without a lock. A write that allocates holds {@link #lock} from
 * {@link #beginWrite} until its ticket closes: where QEMU puts them (a new L2 table at the end of the file rounded
 * up to a cluster, then the data clusters after it), the data is written first, with the uncovered part of a
 * partial cluster copied from below (or from the decompressed cluster it replaces); the entries change in memory on
 * commit and reach the file on flush, in the order {@link TwoLevelTable} describes.
 *
 * <p>QEMU's qcow driver writes the L1 entry, then the new L2 table, then the L2 entry, each synced, and the data
 * last, so that a crash can leave entries naming clusters whose data never arrived. imago turns that round, as its
 * other formats do: the data first, the entries naming it after a sync.
 */
final class QcowInstance implements FormatInstance {
    private static final long CACHE_BYTES = 16L << 20;
    private static final long COMPRESSED = 1L << 63;

    private final Storage storage;
    private final String name;
    private final boolean writable;
    private final QcowHeader header;
    private final Optional<Dependency.BackingFile> backing;
    private final int clusterSize;
    private final int clusterBits;
    private final int l1Shift;
    private final long offsetMask;
    private final TwoLevelTable tables;
    /** Guards the tables and {@link #fileEnd}. */
    private final ReentrantLock lock = new ReentrantLock();
    /** The end of the file as allocation sees it (QEMU's bdrv_getlength). */
    private long fileEnd;
    /** Whether {@link #fileEnd} was moved past what the tables name (guarded by the lock). */
    private boolean pastMapped;

    QcowInstance(Storage storage, QcowHeader header, boolean writable, Optional<Dependency.BackingFile> backing,
            long fileLength) throws IOException {
        this.storage = storage;
        this.name = storage.name();
        this.writable = writable;
        this.header = header;
        this.backing = backing;
        this.clusterSize = header.clusterSize();
        this.clusterBits = header.clusterBits();
        this.l1Shift = header.clusterBits() + header.l2Bits();
        this.offsetMask = (1L << (63 - clusterBits)) - 1;
        this.fileEnd = fileLength;
        this.tables = loadTables(storage, header, fileLength, writable);
    }

    /**
     * Reads the L1 table the header names.
     *
     * @throws CorruptImageException if it does not lie in the file, or (opened for writing) an L2 table it names
     *     does not
     */
    private static TwoLevelTable loadTables(Storage storage, QcowHeader header, long fileLength, boolean writable)
            throws IOException {
        int entries = (int) header.l1Entries();
        long offset = header.l1TableOffset();
        if (offset < QcowHeader.LENGTH || offset > fileLength || fileLength - offset < 8L * entries) {
            throw new CorruptImageException(storage.name(), 40, "the L1 table (" + entries + " entries at offset "
                    + Long.toUnsignedString(offset) + ") does not lie in the file of " + fileLength + " bytes");
        }
        long tableBytes = 8L * header.l2Entries();
        int maxCached = (int) Math.max(16, Math.min(65536, CACHE_BYTES / tableBytes));
        return TwoLevelTable.load(storage, ByteOrder.BIG_ENDIAN, offset, entries, header.l2Entries(), maxCached,
                (at, index, fileEnd) -> {
                    // read-only, an L2 table past the end of the file (a file cut short) reads as zeroes, as QEMU
                    // reads it; a writable open refuses it, as QEMU would allocate new clusters over it
                    if (at < QcowHeader.LENGTH || writable && at > fileEnd - tableBytes) {
                        throw new CorruptImageException(storage.name(), offset + 8L * index, "L1 entry " + index
                                + " names an L2 table at offset " + Long.toUnsignedString(at) + " outside the file of "
                                + fileEnd + " bytes");
                    }
                });
    }

    @Override
    public long size() {
        return header.virtualSize();
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of(clusterSize);
    }

    @Override
    public List<Dependency> dependencies() {
        return backing.<List<Dependency>>map(List::of).orElse(List.of());
    }

    // ------------------------------------------------------------------ lookups

    private enum Kind { UNALLOCATED, DATA, COMPRESSED }

    /** A run of one kind from {@code offset}; {@code entry} is the first cluster's entry. */
    private record Run(Kind kind, long offset, long length, long entry, int l1Index, TwoLevelTable.L2 table,
            int l2Index) {
        long end() {
            return offset + length;
        }
    }

    private long clusterStart(long offset) {
        return offset & -(long) clusterSize;
    }

    /** The run at {@code offset}, ending at most at {@code limit} (the lock held). */
    private Run lookup(long offset, long limit) throws IOException {
        int l1Index = (int) (offset >>> l1Shift);
        long end = Math.min(limit, (long) (l1Index + 1) << l1Shift);
        long l2Offset = tables.l1(l1Index);
        if (l2Offset == 0) {
            return new Run(Kind.UNALLOCATED, offset, end - offset, 0, l1Index, null, -1);
        }
        TwoLevelTable.L2 table = tables.l2(l2Offset, l1Index, fileEnd);
        int index = (int) ((offset >>> clusterBits) & (header.l2Entries() - 1));
        long first = table.entry(index);
        Kind kind = first == 0 ? Kind.UNALLOCATED : (first & COMPRESSED) != 0 ? Kind.COMPRESSED : Kind.DATA;
        int clusters = kind == Kind.COMPRESSED ? 1 : (int) ((end - 1 - clusterStart(offset) >>> clusterBits) + 1);
        int n = 1;
        for (; n < clusters; n++) {
            long e = table.entry(index + n);
            if (kind == Kind.UNALLOCATED ? e != 0 : e != first + ((long) n << clusterBits)) {
                break;
            }
        }
        if (kind == Kind.DATA) {
            for (int i = 0; i < n; i++) {
                long e = table.entry(index + i);
                // read-only, a cluster past the end of the file (a file cut short) reads as zeroes, as in QEMU
                if ((e & 511) != 0 || e < QcowHeader.LENGTH || writable && e >= fileEnd) {
                    throw new CorruptImageException(name, l2Offset + 8L * (index + i), "L2 entry names data "
                            + "cluster offset " + e + ", which is not a sector inside the file");
                }
            }
        }
        long runEnd = Math.min(end, clusterStart(offset) + ((long) n << clusterBits));
        return new Run(kind, offset, runEnd - offset, first, l1Index, table, index);
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(name + ": bad mapping query: offset " + offset + ", length " + maxLength);
        }
        long size = size();
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long limit = offset + Math.min(maxLength, size - offset);
        lock.lock();
        try {
            Run run = lookup(offset, limit);
            return switch (run.kind()) {
                case UNALLOCATED -> new Mapping.Unallocated(offset, run.length());
                case COMPRESSED -> new Mapping.Special(offset, run.length(), "compressed");
                case DATA -> new Mapping.Data(offset, run.length(), storage,
                        run.entry() + (offset - clusterStart(offset)));
            };
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        while (dst.hasRemaining()) {
            long entry;
            long entryAt;
            lock.lock();
            try {
                Run run = lookup(offset, offset + 1);
                if (run.kind() != Kind.COMPRESSED) {
                    throw new IllegalStateException(name + ": no compressed cluster at " + offset);
                }
                entry = run.entry();
                entryAt = tables.l1(run.l1Index()) + 8L * run.l2Index();
            } finally {
                lock.unlock();
            }
            byte[] cluster = inflate(entry, entryAt);
            int at = (int) (offset - clusterStart(offset));
            int n = Math.min(dst.remaining(), clusterSize - at);
            dst.put(cluster, at, n);
            offset += n;
        }
    }

    /**
     * The cluster a compressed entry names: raw deflate that must give exactly one cluster, as QEMU's
     * decompress_buffer demands; memory is bounded by the cluster.
     */
    private byte[] inflate(long entry, long entryAt) throws IOException {
        long at = entry & offsetMask;
        int length = (int) ((entry >>> (63 - clusterBits)) & (clusterSize - 1));
        long fileSize = storage.size();
        if (at < QcowHeader.LENGTH || at > fileSize || fileSize - at < length) {
            throw new CorruptImageException(name, entryAt, "compressed cluster of " + length + " bytes at offset "
                    + at + " lies outside the file of " + fileSize + " bytes");
        }
        ByteBuffer in = ByteBuffer.allocate(length);
        storage.read(in, at);
        byte[] out = new byte[clusterSize];
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in.flip());
            int n = 0;
            while (n < clusterSize && !inflater.finished()) {
                int got = inflater.inflate(out, n, clusterSize - n);
                if (got == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
                n += got;
            }
            if (n == clusterSize && !inflater.finished() && inflater.inflate(new byte[1]) > 0) {
                n++; // more than a cluster: QEMU would cut it off, imago refuses it
            }
            if (n != clusterSize) {
                throw new CorruptImageException(name, entryAt, "compressed cluster at offset " + at + " inflates to "
                        + (n > clusterSize ? "more than" : n + " bytes, not") + " one cluster of " + clusterSize);
            }
        } catch (DataFormatException e) {
            throw new CorruptImageException(name, entryAt, "compressed cluster at offset " + at
                    + " is not valid deflate data: " + e.getMessage(), e);
        } finally {
            inflater.end();
        }
        return out;
    }

    // ------------------------------------------------------------------ writes

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(name, offset, "image is opened read-only");
        }
        long size = size();
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(name + ": no data mapping for " + length + " bytes at offset " + offset
                    + " (size " + size + ")");
        }
        lock.lock();
        boolean handedOver = false;
        try {
            Run run = lookup(offset, offset + Math.min(length, size - offset));
            if (run.kind() == Kind.DATA) {
                return WriteTicket.of(new Mapping.Data(offset, run.length(), storage,
                        run.entry() + (offset - clusterStart(offset))));
            }
            WriteTicket t = allocate(run, below);
            handedOver = true;
            return t;
        } finally {
            if (!handedOver) {
                lock.unlock();
            }
        }
    }

    private long alignUp(long offset) {
        return (offset + clusterSize - 1) & -(long) clusterSize;
    }

    /** New clusters for {@code run} where QEMU puts them, filled around the write from below (lock held). */
    private WriteTicket allocate(Run run, BackingReader below) throws IOException {
        if (!pastMapped) {
            // in a file cut short the tables may name clusters past its end, where QEMU would put new ones over them
            long highest = tables.highestEnd(8L * header.l2Entries(), fileEnd,
                    e -> e < 0 ? (e & offsetMask) + ((e >>> (63 - clusterBits)) & (clusterSize - 1)) // compressed
                            : e + clusterSize);
            fileEnd = Math.max(fileEnd, highest);
            pastMapped = true;
        }
        long before = fileEnd;
        long tableAt = -1;
        long end = before;
        if (run.table() == null) {
            tableAt = alignUp(end);
            end = tableAt + 8L * header.l2Entries();
        }
        long start = clusterStart(run.offset());
        long stop = alignUp(run.end());
        long host = alignUp(end);
        long newEnd = host + (stop - start);
        if (run.kind() == Kind.COMPRESSED) {
            byte[] old = inflate(run.entry(), run.table().offset() + 8L * run.l2Index());
            storage.write(ByteBuffer.wrap(old, 0, (int) (run.offset() - start)), host);
            int tail = (int) (run.end() - start);
            storage.write(ByteBuffer.wrap(old, tail, clusterSize - tail), host + tail);
        } else {
            fill(below, start, run.offset(), host);
            fill(below, run.end(), stop, host + (run.end() - start));
        }
        fileEnd = newEnd;
        long table = tableAt;
        Mapping.Data mapping = new Mapping.Data(run.offset(), run.length(), storage, host + (run.offset() - start));
        int clusters = (int) ((stop - start) >>> clusterBits);
        return new AllocatingWriteTicket(mapping, lock) {
            @Override
            protected void onCommit() throws IOException {
                point(run, table, host, clusters);
            }

            @Override
            protected void onAbort() throws IOException {
                if (fileEnd == newEnd) {
                    fileEnd = before;
                    if (storage.size() > before && storage.size() <= newEnd) {
                        storage.resize(before, Preallocation.OFF);
                    }
                }
            }
        };
    }

    /** Copies guest bytes {@code [from, to)} from {@code below} to {@code host} (beyond the size: zeroes). */
    private void fill(BackingReader below, long from, long to, long host) throws IOException {
        if (to <= from) {
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(to - from));
        long readable = Math.max(0, Math.min(to, size()) - from);
        if (readable > 0) {
            below.read(buf.limit((int) readable), from);
        }
        storage.write(buf.clear(), host);
    }

    /** Points the run's entries at the new clusters, with a new L2 table at {@code tableAt} if it had none. */
    private void point(Run run, long tableAt, long host, int clusters) throws IOException {
        TwoLevelTable.L2 table = run.table();
        int index = (int) ((run.offset() >>> clusterBits) & (header.l2Entries() - 1));
        if (table == null) {
            table = tables.fresh(tableAt);
            tables.setL1(run.l1Index(), tableAt);
        }
        for (int i = 0; i < clusters; i++) {
            tables.set(table, index + i, host + ((long) i << clusterBits));
        }
        tables.writeBackIfFull();
    }

    // ------------------------------------------------------------------ flush, close

    @Override
    public void flush() throws IOException {
        if (writable) {
            lock.lock();
            try {
                tables.writeBack();
            } finally {
                lock.unlock();
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
        if (writable) {
            flush();
            storage.sync();
        }
    }

    @Override
    public String toString() {
        return "qcow on " + name;
    }
}
