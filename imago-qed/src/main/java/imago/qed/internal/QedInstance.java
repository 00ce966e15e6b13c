package imago.qed.internal;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.AllocatingWriteTicket;
import imago.api.spi.BackingReader;
import imago.api.spi.BackingRewriter;
import imago.api.spi.Checker;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.TwoLevelTable;
import imago.api.spi.WriteTicket;
import imago.qed.internal.QedClusters.Kind;
import imago.qed.internal.QedClusters.Run;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One open QED image. Reads follow the L1 and L2 tables (0: unallocated, falls to the backing file; 1: a zero
 * cluster; otherwise the data cluster's offset). Writes to allocated clusters go in place without a lock; a write
 * that allocates holds {@link #lock} from {@link #beginWrite} until its ticket closes, as QEMU lets one allocating
 * write run at a time: the data clusters are taken at the end of the file (the uncovered parts of partial clusters
 * copied from below first), then on commit a new L2 table after them if the L1 entry was empty, and the entries
 * change in memory, written back by {@link TwoLevelTable#writeBack} in crash-safe order on flush. Before the first
 * allocation of an image without a backing file the header's need-check bit is set (and synced), and a clean close
 * clears it, as QEMU does; a writable open of an image that has it runs the check with repairs first.
 *
 * <p>{@link QedClusters} holds the cluster map (lookups, entries, the end of the allocated clusters),
 * {@link QedHeaderState} the header as it changes on disk, and {@link QedGrowth} what a resize over a backing file
 * adds; this class takes the lock, allocates and hands the rest to them.
 */
final class QedInstance implements FormatInstance, Resizer, Checker, BackingRewriter {
    /** L2 tables cached per image: 32 MiB, as much as QEMU's default cache covers and more. */
    private static final long CACHE_BYTES = 32L << 20;

    private final Storage storage;
    private final String name;
    private final boolean writable;
    private volatile Optional<Dependency.BackingFile> backing;
    private final int clusterSize;
    private final int clusterShift;
    private final TwoLevelTable tables;
    /** Guards the cluster map (tables and the end of the allocated clusters) and the header. */
    private final ReentrantLock lock = new ReentrantLock();
    private final QedClusters clusters;
    private final QedHeaderState header;

    QedInstance(Storage storage, QedHeader header, boolean writable, Optional<Dependency.BackingFile> backing,
            long fileLength) throws IOException {
        this.storage = storage;
        this.name = storage.name();
        this.writable = writable;
        this.backing = backing;
        this.header = new QedHeaderState(storage, header);
        this.clusterSize = header.clusterSize();
        this.clusterShift = Integer.numberOfTrailingZeros(clusterSize);
        this.tables = header.loadTables(storage,
                (int) Math.max(4, Math.min(4096, CACHE_BYTES / header.tableBytes())));
        this.clusters = new QedClusters(name, header, tables, fileLength, writable);
    }

    QedHeader header() {
        return header.get();
    }

    @Override
    public long size() {
        return header.get().imageSize();
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of(clusterSize);
    }

    @Override
    public boolean dirty() {
        return header.get().needsCheck();
    }

    @Override
    public List<Dependency> dependencies() {
        return backing.<List<Dependency>>map(List::of).orElse(List.of());
    }

    // ------------------------------------------------------------------ lookups

    private long clusterStart(long offset) {
        return clusters.clusterStart(offset);
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
            Run run = clusters.lookup(offset, limit);
            return switch (run.kind()) {
                case L1_UNALLOCATED -> new Mapping.Unallocated(offset, clusters.unallocatedL1End(run, limit) - offset);
                case UNALLOCATED -> new Mapping.Unallocated(offset, run.length());
                case ZERO -> Mapping.Zero.unreserved(offset, run.length());
                case DATA -> new Mapping.Data(offset, run.length(), storage, run.host());
            };
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ writes

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        long size = size();
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(name + ": no data mapping for " + length + " bytes at offset " + offset
                    + " (size " + size + ")");
        }
        lock.lock();
        boolean handedOver = false;
        try {
            Run run = clusters.lookup(offset, offset + Math.min(length, size - offset));
            if (run.kind() == Kind.DATA) {
                return WriteTicket.of(new Mapping.Data(offset, run.length(), storage, run.host()));
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

    /**
     * Takes new clusters at the end of the file for {@code run} and fills the parts of its first and last cluster
     * the write leaves, from below (zeroes for zero clusters); the ticket holds the lock (as QEMU's allocating_acb).
     */
    private WriteTicket allocate(Run run, BackingReader below) throws IOException {
        markNeedCheck();
        clusters.skipMappedClusters();
        long start = clusterStart(run.offset());
        long end = clusterStart(run.end() + clusterSize - 1);
        long host = clusters.fileEnd();
        long newEnd = host + (end - start);
        BackingReader source = run.kind() == Kind.ZERO ? BackingReader.ZEROES : below;
        fill(source, start, run.offset(), host);
        fill(source, run.end(), end, host + (run.end() - start));
        clusters.take(end - start);
        Mapping.Data mapping = new Mapping.Data(run.offset(), run.length(), storage, host + (run.offset() - start));
        int count = (int) ((end - start) >>> clusterShift);
        return new AllocatingWriteTicket(mapping, lock) {
            @Override
            protected void onCommit() throws IOException {
                clusters.point(run, host, count);
            }

            @Override
            protected void onAbort() throws IOException {
                if (clusters.giveBack(host, newEnd)) {
                    if (storage.size() > host && storage.size() <= newEnd) {
                        storage.resize(host, Preallocation.OFF);
                    }
                }
            }
        };
    }

    /** Copies guest bytes {@code [from, to)} from {@code source} to {@code host} (beyond the size: zeroes). */
    private void fill(BackingReader source, long from, long to, long host) throws IOException {
        if (to <= from) {
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(to - from));
        long readable = Math.max(0, Math.min(to, size()) - from);
        if (readable > 0) {
            source.read(buf.limit((int) readable), from);
        }
        storage.write(buf.clear(), host);
    }

    /** Sets the need-check bit (synced) before the first allocation, as QEMU does without a backing file. */
    private void markNeedCheck() throws IOException {
        if (backing.isEmpty()) {
            header.markNeedCheck();
        }
    }

    /**
     * {@inheritDoc} As QEMU's qed: only whole clusters from a cluster boundary are handled (the rest is written as
     * zeroes by the caller); an allocated cluster is overwritten with zeroes in place, an unallocated one becomes a
     * zero cluster (a new L2 table if needed), a zero cluster stays. {@code MAY_UNMAP} changes nothing, and
     * {@code NO_FALLBACK} is refused whatever the range, as QEMU's block layer refuses it for qed (whose driver does
     * not claim it).
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        return flags.contains(ZeroFlag.NO_FALLBACK) ? 0 : ensureZeroMapping(offset, length, false);
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        ensureWritable(offset);
        if ((offset & (clusterSize - 1)) != 0) {
            return 0;
        }
        long end = offset + clusterStart(Math.min(length, size() - offset));
        long pos = offset;
        lock.lock();
        try {
            while (pos < end) {
                Run run = clusters.lookup(pos, end);
                switch (run.kind()) {
                    case DATA -> storage.writeZeroes(run.host(), run.length(), false);
                    case ZERO -> { }
                    default -> {
                        markNeedCheck();
                        clusters.point(run, 1, (int) (run.length() >>> clusterShift));
                    }
                }
                pos = run.end();
            }
        } finally {
            lock.unlock();
        }
        return pos - offset;
    }

    // ------------------------------------------------------------------ backing file

    /** {@inheritDoc} As QEMU's qed: see {@link QedBackingName}. */
    @Override
    public void changeBackingFile(String file, String format) throws IOException {
        ensureWritable(0);
        lock.lock();
        try {
            header.changeBackingFile(file, format);
            backing = file == null ? Optional.empty() : Optional.of(new Dependency.BackingFile(file,
                    "raw".equals(format) ? Optional.of("raw") : Optional.empty()));
        } finally {
            lock.unlock();
        }
    }

    /** Refused: QEMU's qed cannot empty an image, so {@code commit} leaves its data where it is. */
    @Override
    public void makeEmpty() throws IOException {
        throw new UnsupportedFeatureException(name, Feature.BACKING_FILE, "a qed image cannot be emptied");
    }

    // ------------------------------------------------------------------ flush, resize, check, close

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

    /**
     * {@inheritDoc} As QEMU's qed: grows only, without preallocation, to a multiple of 512 bytes that the tables can
     * address; only the header changes. Growth over a longer backing file makes the new area read as zero.
     */
    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        ensureWritable(0);
        if (preallocation != Preallocation.OFF) {
            throw new UnsupportedFeatureException(name, Feature.PREALLOCATION, "Unsupported preallocation mode '"
                    + preallocation.qemuName() + "'");
        }
        QedHeader h = header.get();
        if (newSize < 0 || !QedHeader.validImageSize(newSize, h.clusterSize(), h.tableSize())) {
            throw new IllegalArgumentException("Invalid image size specified");
        }
        long old = h.imageSize();
        if (newSize < old) {
            throw new UnsupportedFeatureException(name, Feature.RESIZE, "Shrinking images is currently not supported");
        }
        if (newSize == old) {
            return;
        }
        lock.lock();
        try {
            header.resize(newSize);
        } finally {
            lock.unlock();
        }
        if (backing.isPresent() && !below.readsAsZero(old, newSize - old)) {
            QedGrowth.zero(this, clusterSize, old, newSize, below);
        }
    }

    @Override
    public CheckReport check(Repair repair) throws IOException {
        boolean fix = repair != Repair.NONE;
        if (fix) {
            ensureWritable(0);
        }
        lock.lock();
        try {
            if (writable) {
                tables.writeBack();
            }
            QedCheck.Result first = QedCheck.run(storage, header.get(), tables, clusters.fileEnd(), fix);
            if (fix) {
                markClean(first);
            }
            QedCheck.Result result = fix && first.corruptionsFixed() > 0
                    ? QedCheck.run(storage, header.get(), tables, clusters.fileEnd(), false) : first;
            return new CheckReport(name, "qed", result.checkErrors(), result.corruptions(), result.leaks(),
                    first.corruptionsFixed(), 0, 0, result.totalClusters(), result.allocatedClusters(),
                    result.fragmentedClusters(), 0, List.of(), Optional.empty());
        } finally {
            lock.unlock();
        }
    }

    /** Clears the need-check bit after a repairing check that left no corruption, as QEMU's qed_check_mark_clean. */
    private void markClean(QedCheck.Result result) throws IOException {
        if (result.corruptions() == 0 && result.checkErrors() == 0 && header.get().needsCheck()) {
            header.clearNeedCheck();
        }
    }

    @Override
    public void close() throws IOException {
        if (!writable) {
            return;
        }
        flush();
        if (header.get().needsCheck()) {
            header.clearNeedCheck();
        } else {
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
        return "qed on " + name;
    }
}
