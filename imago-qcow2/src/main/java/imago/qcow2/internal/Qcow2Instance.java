package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.MAX_HOST_OFFSET;

import imago.api.CheckReport;
import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.NoSuchSnapshotException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.SnapshotInfo;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.BackingRewriter;
import imago.api.spi.Capability;
import imago.api.spi.Checker;
import imago.api.spi.CompressedWriter;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.InternalSnapshots;
import imago.api.spi.OpenContext;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * One open qcow2 layer: the header, the active (or a snapshot's) L1 table held in memory, L2 tables in
 * a {@link Qcow2L2Cache}, the last decompressed cluster, and for writable opens the refcounts and the
 * allocator ({@link Qcow2Refcounts}). The write ordering is described in the package documentation.
 *
 * <p>Mappings are computed per cluster (per subcluster with extended L2 entries) and merged while
 * consecutive units have the same kind and, for kinds with host space, contiguous host offsets, so
 * that one mapping becomes one storage read. Every L1 and L2 entry is validated when used.
 */
final class Qcow2Instance implements FormatInstance, Resizer, Checker, BackingRewriter, CompressedWriter {
    /** L1 entry: bits 0-8 and 56-62 are reserved. */
    static final long L1E_RESERVED = 0x7F00_0000_0000_01FFL;
    /** L1/L2 offset field: bits 9-55. */
    static final long OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    /** L2 entry (standard cluster): bits 1-8 and 56-61 are reserved (bit 0 with extended L2 too). */
    static final long L2E_RESERVED = 0x3F00_0000_0000_01FEL;
    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    static final long ZERO_FLAG = 1L;

    /** Default L2 cache: enough to map 8 GiB (or the whole image), at most 32 MiB. */
    static final long DEFAULT_COVERAGE = 8L << 30;
    static final long MAX_DEFAULT_CACHE = 32L << 20;

    private enum Kind { UNALLOCATED, ZERO_PLAIN, ZERO_ALLOC, DATA, COMPRESSED }

    /** One classified unit: what lies at a guest offset, up to {@code end}. */
    private record Unit(Kind kind, long host, long end, long entry) {
    }

    /** The last decompressed cluster. */
    private record Decompressed(long entry, byte[] data) {
    }

    private final Storage storage;
    private final String resource;
    /** Replaced (under the allocation lock) when a repair or a change of the backing file rewrites it. */
    private volatile Qcow2Header header;
    /** The file size: grows as clusters are allocated. */
    private volatile long fileSize;
    /** The virtual size: changes only by {@link #resize}, which excludes every other request. */
    private volatile long size;
    /** The active L1 table; a resize replaces it with a longer copy. */
    private volatile long[] l1;
    /** Where the active L1 table is: a resize may move it. */
    private volatile long l1Offset;
    private final int clusterBits;
    private final int clusterSize;
    private final int l2Bits;
    private final int unitBits;
    private final boolean extendedL2;
    /** The snapshot table: replaced (copy and switch) by creating and deleting snapshots. */
    private volatile List<Qcow2Snapshot> snapshots;
    /** Where the snapshot table is (0 without snapshots). */
    private volatile long snapshotsOffset;
    /** The persistent bitmaps, as listed when the image was opened. */
    private final List<Qcow2Bitmaps.Bitmap> bitmaps;
    /** Keeps the persistent bitmaps true while the image is written (null: read-only, or no bitmaps). */
    private final Qcow2BitmapTracker tracker;
    /** Why the image was marked corrupt by this instance (no more writes then); null while it is not. */
    private volatile String corrupted;
    private final Qcow2L2Cache cache;
    private final AtomicReference<Decompressed> lastDecompressed = new AtomicReference<>();
    private final AtomicLong decompressions = new AtomicLong();
    /** QEMU's metadata-preallocation guess, made on first use: null until then. */
    private volatile Boolean metadataPreallocated;
    private volatile Storage dataFile;
    private volatile long dataFileSize;
    /** The virtual size of the backing image opened for this layer ({@link #checkBacking}), or -1. */
    private volatile long backingSize = -1;
    /** Refcounts and allocator of a writable image; null when read-only. */
    private volatile Qcow2Refcounts refcounts;
    /**
     * Guards every metadata change. An allocating write holds it from {@link #ensureDataMapping} to
     * {@link #completeWrite}, so that no other write sees or allocates the same cluster meanwhile.
     */
    private final ReentrantLock allocLock = new ReentrantLock();
    /** The allocating write in progress (guarded by {@link #allocLock}). */
    private Pending pending;
    /**
     * Held (read side) by each in-place write from {@link #ensureDataMapping} to {@link #completeWrite};
     * taken (write side) before freed clusters get refcount 0, so that no write lands in a cluster
     * after it was freed.
     */
    private final ReentrantReadWriteLock inPlace = new ReentrantReadWriteLock();
    /**
     * Host clusters that lost a reference (unmapped by zeroing or discard, or a compressed cluster rewritten):
     * their refcounts drop on the next flush, after a sync (guarded by allocLock).
     */
    private final List<Long> pendingDecrefs = new ArrayList<>();
    /**
     * Writes into freshly allocated runs of clusters whose data goes to the host without the allocation
     * lock, so that writers of disjoint ranges copy in parallel (as QEMU lets coroutines run during the
     * data write): their commits by mapping (identity), and the guest clusters they cover, which every
     * other allocation-lock user waits for (guarded by allocLock).
     */
    private final Map<Mapping.Data, Pending> inFlight = new java.util.IdentityHashMap<>();
    private final java.util.Set<Long> inFlightClusters = new java.util.HashSet<>();
    private final java.util.concurrent.locks.Condition inFlightDone = allocLock.newCondition();
    /** inFlight.size(), readable without the lock (completeWrite of an in-place write skips the lock when 0). */
    private volatile int inFlightWrites;
    /**
     * L2 tables changed in memory and not written yet, by host offset (changed under allocLock); the
     * loader serves them, so that evicting one from the cache loses nothing. Written by
     * {@link #writeBack} after the refcounts and the data they point at are on stable media.
     */
    private final ConcurrentHashMap<Long, long[]> dirtyL2 = new ConcurrentHashMap<>();
    /**
     * L1 entries that point at new L2 tables (allocated or copied) but are not written yet: written by
     * {@link #writeBack} after the tables, with a sync in between (guarded by allocLock).
     */
    private final java.util.BitSet dirtyL1 = new java.util.BitSet();
    /** At most this many dirty L2 tables wait in memory (32 MiB worth, at least one). */
    private final int maxDirtyL2;
    /**
     * Whether copy-on-write wrote into new clusters since {@link #writeBack} last synced, and how long the file
     * was then: with lazy refcounts that sync is needed only for copied data and for the file's growth, since an
     * L2 entry past the end of the file is beyond repair (guarded by allocLock).
     */
    private boolean copiedSinceSync;
    private long syncedLength;
    /** Whether the file was grown past its last cluster in use ({@link #writeBack}, lazy refcounts). */
    private boolean grownAhead;

    /**
     * An allocating write whose L2 entry is written only once its data is.
     *
     * @param mapping the mapping handed out
     * @param l2Offset the L2 table
     * @param index the entry in it
     * @param entry the new L2 entry
     * @param allocated the newly allocated host cluster, or -1 if the cluster was already ours
     * @param replaced the L2 entry the new one replaces (its clusters lose a reference on commit), or 0
     * @param count how many consecutive clusters (entries, host clusters) the write allocated; more than one
     *        only for clusters that held nothing (replaced is then 0 for all)
     * @param bitmaps with extended L2 entries, the new subcluster bitmap of each of the count entries; else null
     */
    private record Pending(Mapping.Data mapping, long l2Offset, int index, long entry, long allocated, long replaced,
            int count, long[] bitmaps) {
        Pending(Mapping.Data mapping, long l2Offset, int index, long entry, long allocated, long replaced, int count) {
            this(mapping, l2Offset, index, entry, allocated, replaced, count, null);
        }

        Pending(Mapping.Data mapping, long l2Offset, int index, long entry, long allocated, long replaced) {
            this(mapping, l2Offset, index, entry, allocated, replaced, 1);
        }
    }

    private Qcow2Instance(Storage storage, Qcow2Header header, long fileSize, long size, long[] l1, long l1Offset,
            List<Qcow2Snapshot> snapshots, List<Qcow2Bitmaps.Bitmap> bitmaps, Qcow2BitmapTracker tracker,
            int cacheTables, Qcow2Refcounts refcounts) {
        this.refcounts = refcounts;
        this.bitmaps = bitmaps;
        this.tracker = tracker;
        this.l1Offset = l1Offset;
        this.storage = storage;
        this.resource = storage.name();
        this.header = header;
        this.fileSize = fileSize;
        this.size = size;
        this.l1 = l1;
        this.clusterBits = header.clusterBits();
        this.clusterSize = header.clusterSize();
        this.l2Bits = header.l2Bits();
        this.extendedL2 = header.extendedL2();
        this.unitBits = extendedL2 ? clusterBits - 5 : clusterBits;
        this.snapshots = List.copyOf(snapshots);
        this.snapshotsOffset = snapshots.isEmpty() ? 0 : header.snapshotsOffset();
        this.cache = new Qcow2L2Cache(cacheTables);
        this.maxDirtyL2 = Math.max(1, (32 << 20) / clusterSize);
        this.syncedLength = fileSize;
    }

    /**
     * Opens {@code storage}: reads and validates the header, the snapshot table and the L1 table to use.
     */
    static Qcow2Instance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(Qcow2Header.fixedLength());
        storage.read(head, 0);
        if (fileSize < Qcow2Header.V2_HEADER_LENGTH) {
            throw new CorruptImageException(resource, fileSize, "file is too short for a qcow2 header ("
                    + fileSize + " bytes)");
        }
        int cs = Qcow2Header.clusterSizeOf(head.flip(), resource);
        ByteBuffer cluster0 = ByteBuffer.allocate(cs);
        storage.read(cluster0, 0);
        boolean forCheck = context.forCheck();
        // opened for checking, tables past the end of the file are the check's to report (as QEMU opens them)
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), resource, forCheck ? Long.MAX_VALUE : fileSize,
                forCheck);
        if (context.writable() && !forCheck) {
            refuseWritable(header, context, resource);
            if (header.dirty()) {
                // lazy refcounts were in use and the image was not closed cleanly: its refcounts cannot be trusted
                // until they are rebuilt from the tables (as QEMU repairs a dirty image on a read/write open)
                header = repairDirty(storage, resource);
                fileSize = storage.size();
            }
        }
        // opened for checking, a damaged snapshot table is the check's to report: read as far as QEMU's check does
        List<Qcow2Snapshot> snapshots = header.nbSnapshots() == 0 ? List.of()
                : forCheck ? Qcow2Snapshot.readForCheck(storage, header, false, m -> { }).entries()
                : Qcow2Snapshot.readTable(storage, header, fileSize);
        // opened for checking, a damaged bitmap directory is the check's to report
        Qcow2Bitmaps.Directory directory = forCheck ? Qcow2Bitmaps.Directory.NONE
                : Qcow2Bitmaps.read(storage, header, fileSize);

        long l1Offset = header.l1TableOffset();
        int l1Size = header.l1Size();
        long size = header.guestSize();
        String wanted = context.options().get("snapshot");
        if (wanted != null) {
            Qcow2Snapshot s = snapshots.stream().filter(x -> x.id().equals(wanted)).findFirst()
                    .or(() -> snapshots.stream().filter(x -> x.name().equals(wanted)).findFirst())
                    .orElseThrow(() -> new ImageException(resource, "no snapshot with id or name '" + wanted
                            + "' (the image has " + snapshots.size() + ")"));
            l1Offset = s.l1TableOffset();
            l1Size = s.l1Size();
            if (s.diskSize() >= 0) {
                size = s.diskSize();
            }
        }
        long[] l1 = readTable(storage, l1Offset, l1Size);
        Qcow2Refcounts refcounts = null;
        Qcow2BitmapTracker tracker = null;
        if (context.writable() && !forCheck) {
            refcounts = Qcow2Refcounts.open(storage, header, fileSize);
            // imago maintains a raw data file and the bitmaps; it clears any other autoclear bit before the first
            // write, as the bits ask of a program that does not know them
            long kept = header.autoclearFeatures() & (Qcow2Header.AUTOCLEAR_DATA_FILE_RAW
                    | (directory.bitmaps().isEmpty() ? 0 : Qcow2Header.AUTOCLEAR_BITMAPS));
            if (header.version() >= 3 && header.autoclearFeatures() != kept) {
                storage.write(ByteBuffer.allocate(8).putLong(0, kept), 88);
                storage.flush();
                storage.sync();
            }
            tracker = Qcow2BitmapTracker.open(storage, header, directory, fileSize, size, kept);
        }
        Qcow2Instance instance = new Qcow2Instance(storage, header, fileSize, size, l1, l1Offset, snapshots,
                directory.bitmaps(), tracker, cacheTables(context.options(), header, size, resource), refcounts);
        if (refcounts != null) {
            instance.verifyMetadataCounted();
        }
        return instance;
    }

    /**
     * Refuses a writable open of an image whose metadata has a cluster with refcount 0: the allocator
     * would hand that cluster out and overwrite the metadata (QEMU's overlap check would stop the write
     * and mark the image corrupt). Guest data clusters are checked when they are written in place.
     */
    private void verifyMetadataCounted() throws IOException {
        counted(0, clusterSize, "header");
        counted(l1Offset, l1.length * 8L, "active L1 table");
        counted(refcounts.tableOffset(), refcounts.tableBytes(), "refcount table");
        for (long b : refcounts.blockOffsets()) {
            counted(b, clusterSize, "refcount block");
        }
        if (tracker != null) {
            for (long[] e : tracker.extents()) {
                counted(e[0], e[1], "bitmap directory or table");
            }
        }
        for (long e : l1) {
            counted(e & OFFSET_MASK, clusterSize, "active L2 table");
        }
        if (!snapshots.isEmpty()) {
            counted(snapshotsOffset, snapshotTableBytes(snapshots), "snapshot table");
            for (Qcow2Snapshot sn : snapshots) {
                counted(sn.l1TableOffset(), sn.l1Size() * 8L, "snapshot L1 table");
                for (long e : readTable(storage, sn.l1TableOffset(), sn.l1Size())) {
                    counted(e & OFFSET_MASK, clusterSize, "snapshot L2 table");
                }
            }
        }
    }

    private void counted(long offset, long bytes, String what) throws IOException {
        if (offset == 0 && !what.equals("header") || bytes <= 0) {
            return;
        }
        for (long c = offset >>> clusterBits; c <= (offset + bytes - 1) >>> clusterBits; c++) {
            if (refcounts.get(c) == 0) {
                throw new CorruptImageException(resource, c << clusterBits, "the " + what + " at 0x"
                        + Long.toHexString(offset) + " has a cluster with refcount 0: the refcounts are damaged "
                        + "(imago check -r all repairs them)");
            }
        }
    }

    /** Refuses, before anything is written, writable opens of images this writer cannot keep consistent. */
    private static void refuseWritable(Qcow2Header header, OpenContext context, String resource) throws IOException {
        if (header.corrupt()) {
            throw new CorruptImageException(resource, 72, "qcow2: Image is corrupt; cannot be opened read/write");
        }
        if (context.options().get("snapshot") != null) {
            throw new UnsupportedFeatureException(resource, Feature.INTERNAL_SNAPSHOTS,
                    "an internal snapshot can only be opened read-only");
        }
        if ((header.refcountTableOffset() & (header.clusterSize() - 1)) != 0) {
            throw new CorruptImageException(resource, 48, "refcount table offset is not cluster aligned");
        }
    }

    /**
     * Repairs a dirty image's refcounts ({@code qemu-img check -r all}), which clears the dirty bit, and
     * returns the header read again.
     */
    private static Qcow2Header repairDirty(Storage storage, String resource) throws IOException {
        CheckReport report = new Qcow2Check(storage).run(Repair.ALL);
        ByteBuffer cluster0 = ByteBuffer.allocate(Qcow2Header.clusterSizeOf(readHead(storage), resource));
        storage.read(cluster0, 0);
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), resource, storage.size());
        if (header.dirty() || !report.clean()) {
            throw new CorruptImageException(resource, 72, "Could not repair dirty image: " + report.corruptions()
                    + " corruptions, " + report.leaks() + " leaks and " + report.checkErrors()
                    + " check errors remain; run qemu-img check -r all");
        }
        return header;
    }

    private static ByteBuffer readHead(Storage storage) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(Qcow2Header.fixedLength());
        storage.read(head, 0);
        return head.flip();
    }

    private static long[] readTable(Storage storage, long offset, int entries) throws IOException {
        long[] out = new long[entries];
        int chunk = 1 << 16;
        ByteBuffer buf = ByteBuffer.allocate(Math.min(entries, chunk) * 8).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < entries; i += chunk) {
            int n = Math.min(chunk, entries - i);
            buf.clear().limit(n * 8);
            storage.read(buf, offset + i * 8L);
            buf.flip().asLongBuffer().get(out, i, n);
        }
        return out;
    }

    /** How many L2 tables the cache holds, from the options or the default coverage. */
    static int cacheTables(Map<String, String> options, Qcow2Header header, long size, String resource) {
        int cs = header.clusterSize();
        String opt = options.get("l2-cache-size");
        String name = "l2-cache-size";
        if (opt == null) {
            opt = options.get("cache-size");
            name = "cache-size";
        }
        long bytes;
        if (opt != null) {
            try {
                bytes = Long.parseLong(opt.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(resource + ": option " + name + " must be a number of bytes, got '"
                        + opt + "'", e);
            }
            if (bytes < 0) {
                throw new IllegalArgumentException(resource + ": option " + name + " must not be negative, got "
                        + bytes);
            }
        } else {
            long covered = Math.min(DEFAULT_COVERAGE, size);
            long entries = Qcow2Checks.divCeil(covered, cs);
            bytes = Math.min(MAX_DEFAULT_CACHE, entries * (header.extendedL2() ? 16 : 8));
        }
        long tables = Qcow2Checks.divCeil(bytes, cs);
        return (int) Math.max(opt != null ? 1 : 4, Math.min(tables, Integer.MAX_VALUE));
    }

    // ------------------------------------------------------------------ FormatInstance

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(resource + ": bad mapping query: offset " + offset + ", length "
                    + maxLength);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long end = offset + Math.min(maxLength, size - offset);
        Unit first = unit(offset);
        long pos = Math.min(first.end(), end);
        // runs of compressed clusters map as one Special mapping, so readSpecial can decode them in parallel
        long limit = first.kind() == Kind.COMPRESSED ? Math.min(end, offset + MAX_COMPRESSED_RUN * clusterSize) : end;
        while (pos < limit) {
            Unit next = unit(pos);
            if (next.kind() != first.kind()) {
                break;
            }
            if ((hasHost(first.kind()) || first.host() >= 0 || next.host() >= 0)
                    && next.host() != first.host() + (pos - offset)) {
                break;
            }
            pos = Math.min(next.end(), limit);
        }
        long length = pos - offset;
        return switch (first.kind()) {
            case UNALLOCATED -> first.host() >= 0 ? new Mapping.Unallocated(offset, length, dataStorage(), first.host())
                    : new Mapping.Unallocated(offset, length);
            case ZERO_PLAIN -> Mapping.Zero.unreserved(offset, length);
            case ZERO_ALLOC -> new Mapping.Zero(offset, length, dataStorage(), first.host());
            case DATA -> new Mapping.Data(offset, length, dataStorage(), first.host());
            case COMPRESSED -> new Mapping.Special(offset, length, "compressed");
        };
    }

    private static boolean hasHost(Kind kind) {
        return kind == Kind.DATA || kind == Kind.ZERO_ALLOC;
    }

    /** The storage guest data lives in: the external data file or the image itself. */
    private Storage dataStorage() throws ImageException {
        if (!header.hasDataFile()) {
            return storage;
        }
        Storage d = dataFile;
        if (d == null) {
            throw new ImageException(resource, "the external data file '" + header.dataFile().orElse("")
                    + "' is not attached");
        }
        return d;
    }

    /** Classifies the unit (cluster or subcluster) containing guest offset {@code pos}; host is for {@code pos}. */
    private Unit unit(long pos) throws IOException {
        long cluster = pos >>> clusterBits;
        long l1Index = cluster >>> l2Bits;
        long l2Span = 1L << (clusterBits + l2Bits);
        long[] l1 = this.l1;
        if (l1Index >= l1.length) {
            // a snapshot's L1 table may be shorter than its disk size needs: nothing is allocated there
            return new Unit(Kind.UNALLOCATED, -1, Long.MAX_VALUE, 0);
        }
        long l1e = l1[(int) l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        if ((l1e & L1E_RESERVED) != 0) {
            throw new CorruptImageException(resource, l1Offset + l1Index * 8, "L1 entry "
                    + l1Index + " (0x" + Long.toHexString(l1e) + ") has reserved bits set");
        }
        if (l2Offset == 0) {
            return new Unit(Kind.UNALLOCATED, -1, (l1Index + 1) * l2Span, 0);
        }
        if ((l2Offset & (clusterSize - 1)) != 0) {
            throw new CorruptImageException(resource, l1Offset + l1Index * 8, "L2 table offset 0x"
                    + Long.toHexString(l2Offset) + " unaligned (L1 index " + l1Index + ")");
        }
        if (l2Offset + clusterSize > fileSize) {
            throw new CorruptImageException(resource, l1Offset + l1Index * 8, "L2 table offset 0x"
                    + Long.toHexString(l2Offset) + " of L1 entry " + l1Index + " is past the end of the file");
        }
        long[] table = cache.get(l2Offset, this::loadL2);
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long entry = table[extendedL2 ? 2 * index : index];
        long clusterStart = cluster << clusterBits;
        long clusterEnd = clusterStart + clusterSize;
        long inCluster = pos - clusterStart;
        if ((entry & COMPRESSED) != 0) {
            if (header.hasDataFile()) {
                throw corruptL2(l2Offset, index, entry, "compressed cluster in an image with an external data file");
            }
            if ((entry & COPIED) != 0) {
                throw corruptL2(l2Offset, index, entry, "compressed cluster has the COPIED flag");
            }
            long x = 62 - (clusterBits - 8);
            long host = entry & ((1L << x) - 1);
            if (host >= fileSize) {
                throw corruptL2(l2Offset, index, entry, "compressed data starts past the end of the file");
            }
            return new Unit(Kind.COMPRESSED, -1, clusterEnd, entry);
        }
        long reserved = extendedL2 ? L2E_RESERVED | ZERO_FLAG : L2E_RESERVED;
        if ((entry & reserved) != 0) {
            throw corruptL2(l2Offset, index, entry, "reserved bits are set");
        }
        long host = entry & OFFSET_MASK;
        if (host != 0 || (header.hasDataFile() && (entry & COPIED) != 0)) {
            if (host >= MAX_HOST_OFFSET || (host & (clusterSize - 1)) != 0) {
                throw corruptL2(l2Offset, index, entry, "cluster offset 0x" + Long.toHexString(host) + " unaligned");
            }
            if (header.hasDataFile() && host != clusterStart) {
                // QEMU allocates data file clusters at their guest offset and refuses anything else
                throw corruptL2(l2Offset, index, entry, "external data file host cluster offset 0x"
                        + Long.toHexString(host) + " does not match guest cluster offset 0x"
                        + Long.toHexString(clusterStart));
            }
            long limit = header.hasDataFile() ? dataFileLimit() : fileSize;
            if (host >= limit) {
                throw corruptL2(l2Offset, index, entry, "cluster offset 0x" + Long.toHexString(host)
                        + " is past the end of the " + (header.hasDataFile() ? "data file" : "file"));
            }
        }
        if (!extendedL2) {
            if ((entry & ZERO_FLAG) != 0) {
                return host != 0 ? new Unit(Kind.ZERO_ALLOC, host + inCluster, clusterEnd, entry)
                        : new Unit(Kind.ZERO_PLAIN, -1, clusterEnd, entry);
            }
            if (host == 0 && !(header.hasDataFile() && (entry & COPIED) != 0)) {
                return new Unit(Kind.UNALLOCATED, -1, clusterEnd, entry);
            }
            return new Unit(Kind.DATA, host + inCluster, clusterEnd, entry);
        }
        long bitmap = table[2 * index + 1];
        int sub = (int) (inCluster >>> unitBits);
        long subEnd = clusterStart + ((long) (sub + 1) << unitBits);
        boolean alloc = (bitmap & (1L << sub)) != 0;
        boolean zero = (bitmap & (1L << (32 + sub))) != 0;
        if (alloc && zero) {
            throw corruptL2(l2Offset, index, entry, "subcluster " + sub + " is both allocated and zero (bitmap 0x"
                    + Long.toHexString(bitmap) + ")");
        }
        boolean clusterAllocated = host != 0 || (header.hasDataFile() && (entry & COPIED) != 0);
        if (!clusterAllocated) {
            if (alloc) {
                throw corruptL2(l2Offset, index, entry, "subcluster " + sub
                        + " is allocated in a cluster without host offset");
            }
            return new Unit(zero ? Kind.ZERO_PLAIN : Kind.UNALLOCATED, -1, subEnd, entry);
        }
        if (zero) {
            return new Unit(Kind.ZERO_ALLOC, host + inCluster, subEnd, entry);
        }
        // an unallocated subcluster of an allocated cluster keeps its place in the cluster
        return new Unit(alloc ? Kind.DATA : Kind.UNALLOCATED, host + inCluster, subEnd, entry);
    }

    /**
     * Makes an external data file read zero where a cluster became a zero cluster: a raw data file must
     * show the guest's bytes (QEMU zeroes it too); otherwise the space is only given back.
     */
    private void clearDataFile(long host) throws IOException {
        if (header.dataFileRaw()) {
            dataStorage().writeZeroes(host, clusterSize, true);
        } else {
            dataStorage().discard(host, clusterSize);
        }
    }

    private long dataFileLimit() throws ImageException {
        dataStorage();
        return dataFileSize;
    }

    private CorruptImageException corruptL2(long l2Offset, int index, long entry, String what) {
        return new CorruptImageException(resource, l2Offset, "L2 table at 0x" + Long.toHexString(l2Offset)
                + ", entry " + index + " (0x" + Long.toHexString(entry) + "): " + what);
    }

    private long[] loadL2(long l2Offset) throws IOException {
        long[] dirty = dirtyL2.get(l2Offset);
        if (dirty != null) {
            return dirty;
        }
        int words = clusterSize / 8;
        long[] table = new long[words];
        ByteBuffer buf = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
        storage.read(buf, l2Offset);
        buf.flip().asLongBuffer().get(table);
        return table;
    }

    /** Compressed clusters mapped (and decoded) together at most. */
    private static final int MAX_COMPRESSED_RUN = 64;
    /** Clusters decoded at once by one read: QEMU decompresses in its thread pool too. */
    private static final int DECODERS = Math.max(1, Runtime.getRuntime().availableProcessors());

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
        if (dst.remaining() >= 2L * clusterSize && DECODERS > 1) {
            readCompressedInParallel(dst, offset);
            return;
        }
        readCompressed(dst, offset);
    }

    /**
     * Decodes the whole clusters of a long read on virtual threads, at most {@link #DECODERS} at a time,
     * each into its own slice of {@code dst}; partial clusters at either end go through the cache.
     */
    private void readCompressedInParallel(ByteBuffer dst, long offset) throws IOException {
        int start = dst.position();
        int total = dst.remaining();
        long end = offset + total;
        java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(DECODERS);
        List<java.util.concurrent.Future<Void>> parts = new java.util.ArrayList<>();
        try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (long pos = offset; pos < end; ) {
                long clusterEnd = (pos & -(long) clusterSize) + clusterSize;
                long partEnd = Math.min(end, clusterEnd);
                ByteBuffer part = dst.slice(start + (int) (pos - offset), (int) (partEnd - pos));
                long at = pos;
                parts.add(pool.submit(() -> {
                    slots.acquire();
                    try {
                        readCompressed(part, at);
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
                pos = partEnd;
            }
            IOException failure = null;
            for (java.util.concurrent.Future<Void> f : parts) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof RuntimeException r) {
                        throw r;
                    }
                    if (c instanceof Error err) {
                        throw err;
                    }
                    IOException io = c instanceof IOException x ? x : new IOException(c);
                    if (failure == null) {
                        failure = io;
                    } else if (failure != io) {
                        failure.addSuppressed(io);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException(resource + ": interrupted while decompressing");
                }
            }
            if (failure != null) {
                throw failure;
            }
        }
        dst.position(start + total);
    }

    private void readCompressed(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            Unit u = unit(pos);
            if (u.kind() != Kind.COMPRESSED) {
                throw new ImageException(resource, "guest offset " + pos + " is not a compressed cluster");
            }
            byte[] data = decompressed(u.entry(), pos);
            int inCluster = (int) (pos & (clusterSize - 1));
            int n = Math.min(dst.remaining(), clusterSize - inCluster);
            dst.put(data, inCluster, n);
            pos += n;
        }
    }

    private byte[] decompressed(long entry, long guestOffset) throws IOException {
        Decompressed last = lastDecompressed.get();
        if (last != null && last.entry() == entry) {
            return last.data();
        }
        int x = 62 - (clusterBits - 8);
        long host = entry & ((1L << x) - 1);
        long sectors = ((entry >>> x) & ((1L << (clusterBits - 8)) - 1)) + 1;
        // QEMU reads nb_csectors * 512 - (offset & 511) bytes from the byte-granular offset
        long length = sectors * 512 - (host & 511);
        long fileEnd = (fileSize + 511) & ~511L;
        if (Qcow2Checks.add(resource, host, host, length, "compressed cluster range") > fileEnd) {
            throw new CorruptImageException(resource, host, "compressed cluster at guest offset " + guestOffset
                    + " (" + length + " bytes) extends past the end of the file");
        }
        decompressions.incrementAndGet();
        byte[] in = new byte[(int) length];
        storage.read(ByteBuffer.wrap(in), host);
        byte[] out = new byte[clusterSize];
        int produced;
        if (header.compressionType() == 0) {
            produced = inflate(in, out, host);
        } else {
            produced = unzstd(in, out, host);
        }
        if (produced != clusterSize) {
            throw new CorruptImageException(resource, host, "compressed cluster at guest offset " + guestOffset
                    + " decompresses to " + produced + " bytes instead of " + clusterSize);
        }
        lastDecompressed.set(new Decompressed(entry, out));
        return out;
    }

    private int inflate(byte[] in, byte[] out, long host) throws CorruptImageException {
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in);
            int produced = 0;
            while (produced < out.length) {
                int n = inflater.inflate(out, produced, out.length - produced);
                produced += n;
                if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
            }
            return produced;
        } catch (DataFormatException e) {
            throw new CorruptImageException(resource, host, "compressed cluster cannot be inflated: "
                    + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }

    private int unzstd(byte[] in, byte[] out, long host) throws IOException {
        try {
            return Qcow2Zstd.decompress(in, in.length, out);
        } catch (LinkageError e) {
            // ImageException fixes its cause at construction: keep the linkage failure as suppressed
            UnsupportedFeatureException u = new UnsupportedFeatureException(resource, Feature.COMPRESSION_TYPE, "zstd compression",
                    "zstd support is not installed (add zstd-jni to the module path, and resolve it with "
                    + "--add-modules com.github.luben.zstd_jni when imago runs as modules)");
            u.addSuppressed(e);
            throw u;
        } catch (ImageException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new CorruptImageException(resource, host, "compressed cluster cannot be decompressed (zstd): "
                    + e.getMessage(), e);
        }
    }

    /**
     * {@inheritDoc} The persistent bitmaps that record writes are marked in use first, and get the bits
     * of the ticket's mapping before the data is written.
     */
    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        return new Qcow2WriteTicket(this, ensureDataMapping(offset, length, below));
    }

    /**
     * Makes the bytes from {@code offset} writable in place (allocating and copying on write); the write is
     * then finished by {@link #completeWrite}, on the same thread, as {@link Qcow2WriteTicket} does.
     */
    Mapping.Data ensureDataMapping(long offset, long length, BackingReader below) throws IOException {
        requireWritable(offset);
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(resource + ": bad write: offset " + offset + ", length " + length);
        }
        if (tracker == null) {
            return mapForWrite(offset, length, below);
        }
        tracker.beforeChange();
        Mapping.Data d = mapForWrite(offset, length, below);
        tracker.written(d.offset(), d.length());
        return d;
    }

    private Mapping.Data mapForWrite(long offset, long length, BackingReader below) throws IOException {
        allocLock.lock();
        boolean keepLock = false;
        try {
            if (pending != null) {
                throw new IllegalStateException(resource + ": the previous allocating write was not completed");
            }
            long span = Math.min(length, ((long) maxRun() << clusterBits) - (offset & (clusterSize - 1)));
            awaitClusters(offset >>> clusterBits, (offset + span - 1) >>> clusterBits);
            if (extendedL2) {
                Mapping.Data d = ensureSubclusterMapping(offset, length, below);
                // an in-place write into allocated subclusters holds the inPlace read lock instead
                keepLock = pending != null;
                return d;
            }
            long clusterStart = offset & ~(long) (clusterSize - 1);
            int inCluster = (int) (offset - clusterStart);
            int n = (int) Math.min(length, clusterSize - inCluster);
            // validates the L1 and L2 entries before anything changes
            Unit u = unit(offset);
            long cluster = offset >>> clusterBits;
            int l1Index = (int) (cluster >>> l2Bits);
            int index = (int) (cluster & ((1L << l2Bits) - 1));
            long l1e = l1[l1Index];
            long l2Offset = l1e & OFFSET_MASK;
            // an L2 table without COPIED is shared with a snapshot: it is copied before it changes
            boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
            long entry = l2Offset == 0 ? 0 : cache.get(l2Offset, this::loadL2)[index];
            if (sharedL2 && (entry & COPIED) != 0) {
                throw corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
            }
            // a data file cluster is the image's own even without COPIED (it is not refcounted)
            boolean own = !sharedL2 && ((entry & COPIED) != 0 || header.hasDataFile() && u.kind() != Kind.UNALLOCATED
                    && u.kind() != Kind.ZERO_PLAIN);
            if (u.kind() == Kind.DATA && own) {
                // refcount 1: write in place
                guardInPlace(entry & OFFSET_MASK);
                Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), (entry & OFFSET_MASK) + inCluster);
                inPlace.readLock().lock();
                return d;
            }
            if (u.kind() == Kind.ZERO_ALLOC && own) {
                long host = entry & OFFSET_MASK;
                guardInPlace(host);
                copyOnWrite(host, clusterStart, inCluster, n, BackingReader.ZEROES);
                Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), host + inCluster);
                pending = new Pending(d, l2Offset, index, host | COPIED, -1, 0);
                keepLock = true;
                return d;
            }
            switch (u.kind()) {
                case UNALLOCATED, ZERO_PLAIN, COMPRESSED, DATA, ZERO_ALLOC -> {
                    // a new cluster; a shared one (COPIED clear) is copied and loses the reference on commit
                    if (!refcounts.canAllocate(l2Offset == 0 || sharedL2 ? 2 : 1)) {
                        throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                                "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
                    }
                    if (l2Offset == 0) {
                        l2Offset = allocateL2(l1Index);
                    } else if (sharedL2) {
                        l2Offset = copyL2(l1Index, l2Offset);
                    }
                    int run = emptyRun(l2Offset, cluster, entry, inCluster + length);
                    if (header.hasDataFile()) {
                        // an external data file holds each cluster at its guest offset, not refcounted
                        Mapping.Data d = allocateRun(offset, length, l2Offset, index, cluster, false, run, u.kind(),
                                below);
                        keepLock = true;
                        return d;
                    }
                    long first = run > 1 ? refcounts.allocateDataRun(run) : -1;
                    if (first >= 0) {
                        Mapping.Data d = allocateRun(offset, length, l2Offset, index, first, true, run, u.kind(),
                                below);
                        // the data is written without the lock; the clusters stay claimed until completeWrite
                        Pending p = pending;
                        pending = null;
                        inFlight.put(d, p);
                        for (int k = 0; k < run; k++) {
                            inFlightClusters.add(cluster + k);
                        }
                        inFlightWrites = inFlight.size();
                        return d;
                    }
                    long c = refcounts.allocate();
                    long host = c << clusterBits;
                    growFile(host + clusterSize);
                    try {
                        long oldHost = entry & OFFSET_MASK;
                        BackingReader source = switch (u.kind()) {
                            case ZERO_PLAIN, ZERO_ALLOC -> BackingReader.ZEROES;
                            case DATA -> (dst, at) -> storage.read(dst, oldHost + (at - clusterStart));
                            case COMPRESSED -> {
                                byte[] plain = decompressed(entry, clusterStart);
                                yield (dst, at) -> dst.put(plain, (int) (at - clusterStart), dst.remaining());
                            }
                            default -> below;
                        };
                        copyOnWrite(host, clusterStart, inCluster, n, source);
                    } catch (IOException | RuntimeException e) {
                        refcounts.free(c);
                        throw e;
                    }
                    Mapping.Data d = new Mapping.Data(offset, n, storage, host + inCluster);
                    pending = new Pending(d, l2Offset, index, host | COPIED, c, entry);
                    keepLock = true;
                    return d;
                }
                default -> throw new IllegalStateException(u.kind().toString());
            }
        } finally {
            if (!keepLock) {
                allocLock.unlock();
            }
        }
    }

    /** Clusters written at most by one allocating request: 8 MiB, one L2 table at most. */
    private int maxRun() {
        return Math.max(1, (8 << 20) >>> clusterBits);
    }

    /**
     * How many clusters from guest cluster {@code cluster} on hold nothing (unallocated, or zero without host
     * space) and are touched by a write of {@code span} bytes from the start of the first cluster, within
     * one L2 table; 1 if the first does not qualify.
     */
    private int emptyRun(long l2Offset, long cluster, long entry, long span) throws IOException {
        if ((entry & ~ZERO_FLAG) != 0 || extendedL2) {
            return 1;
        }
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long touched = Qcow2Checks.divCeil(span, clusterSize);
        int limit = (int) Math.min(Math.min(touched, maxRun()), (1L << l2Bits) - index);
        limit = (int) Math.min(limit, Qcow2Checks.divCeil(size, clusterSize) - cluster);
        long[] table = cache.get(l2Offset, this::loadL2);
        int n = 1;
        while (n < limit && (table[index + n] & ~ZERO_FLAG) == 0) {
            n++;
        }
        return n;
    }

    /**
     * Uses the {@code count} contiguous host clusters from {@code first} (allocated from the refcounts when
     * {@code refcounted}; else the external data file's clusters at their guest offset) for the write at
     * {@code offset}, whose clusters hold nothing: only the head of the first and the tail of the last cluster are filled from
     * {@code below} (or zeroes, for zero clusters), and one mapping covers the whole run, so that the
     * data goes to the host in one write. Under allocLock, which stays held until completeWrite.
     */
    private Mapping.Data allocateRun(long offset, long length, long l2Offset, int index, long first,
            boolean refcounted, int count, Kind kind, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        long host = first << clusterBits;
        long runBytes = (long) count << clusterBits;
        long n = Math.min(length, runBytes - inCluster);
        if (refcounted) {
            growFile(host + runBytes);
        }
        long[] table = cache.get(l2Offset, this::loadL2);
        try {
            if (inCluster > 0) {
                copyPart(host, clusterStart, 0, inCluster, sourceFor(kind, below));
            }
            long end = inCluster + n;
            if (end < runBytes) {
                long lastStart = clusterStart + runBytes - clusterSize;
                int from = (int) (end - (runBytes - clusterSize));
                Kind lastKind = (table[index + count - 1] & ZERO_FLAG) != 0 ? Kind.ZERO_PLAIN : Kind.UNALLOCATED;
                copyPart(host + runBytes - clusterSize, lastStart, from, clusterSize, sourceFor(lastKind, below));
            }
        } catch (IOException | RuntimeException e) {
            for (int k = 0; refcounted && k < count; k++) {
                refcounts.free(first + k);
            }
            throw e;
        }
        Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), host + inCluster);
        pending = new Pending(d, l2Offset, index, host | COPIED, refcounted ? first : -1, 0, count);
        return d;
    }

    private static BackingReader sourceFor(Kind kind, BackingReader below) {
        return kind == Kind.ZERO_PLAIN ? BackingReader.ZEROES : below;
    }

    /**
     * {@inheritDoc} As QEMU's compressed write path: the cluster is compressed (deflate with a 4 KiB window
     * or zstd, after the header's compression type) outside any lock, so that many threads compress at
     * once; data that does not come out at least one byte smaller than a cluster is left to the ordinary
     * write path. The compressed bytes are packed after the previous ones ({@link Qcow2Refcounts#allocateBytes})
     * and written before the L2 entry that points at them. Only an unallocated (or plain zero) cluster may
     * be written compressed; a shared L2 table is copied first.
     */
    @Override
    public boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException {
        requireWritable(offset);
        int length = cluster.remaining();
        if ((offset & (clusterSize - 1)) != 0 || offset < 0 || offset >= size || length < 1 || length > clusterSize
                || length < clusterSize && offset + length != size) {
            throw new IllegalArgumentException(resource + ": a compressed write must cover one whole cluster (or the "
                    + "last one up to the end of the image), got " + length + " bytes at offset " + offset);
        }
        ByteBuffer scratch = Qcow2CompressBuffers.take(2 * clusterSize);
        try {
            ByteBuffer plain;
            if (cluster.isDirect() && length == clusterSize) {
                plain = cluster.slice(cluster.position(), length);
            } else {
                // QEMU compresses the partial last cluster padded with zeroes to a whole one
                plain = scratch.slice(0, clusterSize).put(0, cluster, cluster.position(), length);
                if (length < clusterSize) {
                    plain.put(length, new byte[clusterSize - length]);
                }
            }
            // QEMU only stores data compressed when it needs at most cluster_size - 1 bytes
            ByteBuffer packed = scratch.slice(clusterSize, clusterSize - 1);
            int n = header.compressionType() == 0 ? Qcow2Deflate.compress(plain, packed) : zstd(plain, packed);
            if (n <= 0) {
                return false;
            }
            if (tracker != null) {
                tracker.written(offset, length);
            }
            storeCompressed(packed.limit(n), offset);
            return true;
        } finally {
            Qcow2CompressBuffers.give(scratch);
        }
    }

    /** Packs {@code packed}, one cluster's compressed bytes, into the file and points the L2 entry at them. */
    private void storeCompressed(ByteBuffer packed, long offset) throws IOException {
        int n = packed.remaining();
        allocLock.lock();
        try {
            awaitClusters(offset >>> clusterBits, offset >>> clusterBits);
            if (pending != null) {
                throw new IllegalStateException(resource + ": an allocating write is in progress on this thread");
            }
            unit(offset); // validates the L1 and L2 entries before anything changes
            long guestCluster = offset >>> clusterBits;
            int l1Index = (int) (guestCluster >>> l2Bits);
            int index = (int) (guestCluster & ((1L << l2Bits) - 1));
            long l1e = l1[l1Index];
            long l2Offset = l1e & OFFSET_MASK;
            boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
            long entry = l2Offset == 0 ? 0 : cache.get(l2Offset, this::loadL2)[extendedL2 ? 2 * index : index];
            if ((entry & COMPRESSED) != 0 || (entry & OFFSET_MASK) != 0) {
                // QEMU's qcow2_alloc_compressed_cluster_offset refuses (EIO) as well
                throw new ImageException(resource, "cannot write compressed data to guest offset " + offset
                        + ": the cluster is already allocated (compressed data can only be written to unallocated "
                        + "clusters)");
            }
            if ((l2Offset == 0 || sharedL2) && !refcounts.canAllocate(1)) {
                throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                        "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
            }
            if (l2Offset == 0) {
                l2Offset = allocateL2(l1Index);
            } else if (sharedL2) {
                l2Offset = copyL2(l1Index, l2Offset);
            }
            long host = refcounts.allocateBytes(n);
            growFile(((host + n - 1) | (clusterSize - 1)) + 1);
            try {
                storage.write(packed, host);
            } catch (IOException | RuntimeException e) {
                refcounts.freeBytes(host, n);
                throw e;
            }
            // bytes freed earlier can be packed again at the same place and size: the new L2 entry may then
            // equal the one whose decoded cluster is cached
            lastDecompressed.set(null);
            // the sector count field holds the number of 512-byte sectors touched after the first
            long sectors = ((host + n - 1) >>> 9) - (host >>> 9);
            long newEntry = COMPRESSED | host | (sectors << (62 - (clusterBits - 8)));
            if (extendedL2) {
                // a compressed cluster's bitmap is 0 (QEMU ignores it and writes it so)
                setExtendedL2Entry(l2Offset, index, newEntry, 0);
            } else {
                // cached write-back: on disk only after the run's refcounts and the compressed bytes are synced
                setL2Entry(l2Offset, index, newEntry);
            }
        } finally {
            allocLock.unlock();
        }
    }

    private int zstd(ByteBuffer plain, ByteBuffer packed) throws UnsupportedFeatureException {
        try {
            return Qcow2Zstd.compress(plain, packed);
        } catch (LinkageError e) {
            UnsupportedFeatureException u = new UnsupportedFeatureException(resource, Feature.COMPRESSION_TYPE, "zstd compression",
                    "zstd support is not installed (add zstd-jni to the module path, and resolve it with "
                    + "--add-modules com.github.luben.zstd_jni when imago runs as modules)");
            u.addSuppressed(e);
            throw u;
        }
    }

    /**
     * {@inheritDoc} Without the backing chain, only this layer's own zero clusters count as zero around a
     * partial cluster.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        BackingReader below = !hasBackingFile() ? BackingReader.ZEROES : (dst, at) -> {
            throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 zero write with backing file",
                    "writing zeroes into a qcow2 image over its backing image needs the backing chain");
        };
        return ensureZeroMapping(offset, length, mayUnmap ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of(), below);
    }

    /**
     * {@inheritDoc} As QEMU 7.2 (qcow2_co_pwrite_zeroes, qcow2_subcluster_zeroize): whole zero units (clusters,
     * or subclusters with extended L2 entries) become zero with metadata alone, and part of one only when the
     * rest of it reads as zero already, the whole unit then becoming zero. qcow2 v2 has no zero flag: without a
     * backing file it discards instead, with one the caller writes zeroes; and as QEMU supports no zero-write
     * flags on v2, {@link ZeroFlag#NO_FALLBACK} fails there. The persistent bitmaps that record writes get the
     * bits of what was handled.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        if (header.version() < 3 && flags.contains(ZeroFlag.NO_FALLBACK)) {
            return 0;
        }
        if (tracker == null) {
            return zeroRequest(offset, length, flags, below);
        }
        tracker.beforeChange();
        long handled = zeroRequest(offset, length, flags, below);
        tracker.written(offset, handled);
        return handled;
    }

    /**
     * A zero write from {@code offset}, split as QEMU's block layer splits it before the driver sees it: a partial
     * first zero unit, or a short request, alone; else the whole units from {@code offset} on, the unaligned end
     * of a longer request being a request of its own even at the end of the image (so that with extended L2
     * entries a partial last subcluster is zeroed apart from the rest of its cluster). Returns how many bytes it
     * handled.
     */
    private long zeroRequest(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        requireWritable(offset);
        boolean unmap = flags.contains(ZeroFlag.MAY_UNMAP);
        if (offset >= size) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        long unit = 1L << unitBits;
        long unitStart = offset & -unit;
        if (offset != unitStart || requestEnd < Math.min(unitStart + unit, size)) {
            return zeroPartialUnit(offset, requestEnd, unmap, below);
        }
        long alignedEnd = requestEnd & -unit;
        long pieceEnd = alignedEnd > offset ? alignedEnd : requestEnd;
        return extendedL2 ? zeroSubclusters(offset, pieceEnd - offset, unmap, false, false,
                !flags.contains(ZeroFlag.NO_FALLBACK), below) : zeroClusters(offset, pieceEnd - offset, unmap, false);
    }

    /**
     * A zero write over part of one zero unit (the cluster, or the subcluster with extended L2 entries), from
     * {@code offset} to the unit's end or {@code requestEnd}. As QEMU: when the rest of the unit reads as zero
     * already (the unit is a zero one, or is unallocated here and what lies below reads as zero there, by
     * metadata), the whole unit is zeroed as a whole-unit zero write would zero it, and the bytes are handled;
     * otherwise (data, compressed data, or data below) nothing is, and the caller writes zeroes.
     */
    private long zeroPartialUnit(long offset, long requestEnd, boolean unmap, BackingReader below)
            throws IOException {
        long unit = 1L << unitBits;
        long unitStart = offset & -unit;
        long unitEnd = unitStart + unit;
        long pieceEnd = Math.min(unitEnd, requestEnd);
        allocLock.lock();
        try {
            awaitClusters(offset >>> clusterBits, offset >>> clusterBits);
            boolean restReadsZero = switch (unit(offset).kind()) {
                case ZERO_PLAIN, ZERO_ALLOC -> true;
                case UNALLOCATED -> below.readsAsZero(unitStart, offset - unitStart)
                        && below.readsAsZero(pieceEnd, Math.min(unitEnd, size) - pieceEnd);
                case DATA, COMPRESSED -> false;
            };
            if (!restReadsZero) {
                return 0;
            }
            boolean done;
            if (!extendedL2) {
                done = zeroCluster(unitStart, unmap, false, false);
            } else if ((unitStart & (clusterSize - 1)) == 0 && unitEnd >= size) {
                // the first subcluster of a last cluster that ends inside it: QEMU zeroes the whole cluster
                done = zeroExtendedCluster(unitStart, unmap, false, false);
            } else {
                done = zeroSubclusterRange(unitStart, unitEnd);
            }
            return done ? pieceEnd - offset : 0;
        } finally {
            allocLock.unlock();
        }
    }

    /** {@inheritDoc} The persistent bitmaps that record writes get the whole range, as in QEMU. */
    @Override
    public void discard(long offset, long length) throws IOException {
        requireWritable(offset);
        if (tracker != null) {
            tracker.written(offset, length);
        }
        long cs = clusterSize;
        long first = (offset + cs - 1) & ~(cs - 1);
        long pos = first;
        long end = offset + length;
        while (pos < end) {
            long handled = zeroClusters(pos, end - pos, true, true);
            if (handled == 0) {
                // a cluster imago cannot unmap (no room to copy its shared L2 table) keeps its data, which a
                // discard allows
                handled = Math.min(end - pos, cs);
            }
            pos += handled;
        }
    }

    /**
     * Zeroes ({@code discard} false) or discards whole clusters from {@code offset} (cluster aligned) with
     * metadata alone and returns how many bytes it handled; stops at the first cluster it cannot handle.
     * An L2 entry changes before the refcount of the cluster it pointed at drops (on the next flush).
     */
    private long zeroClusters(long offset, long length, boolean unmap, boolean discard) throws IOException {
        return zeroClusters(offset, length, unmap, discard, false);
    }

    private long zeroClusters(long offset, long length, boolean unmap, boolean discard, boolean full)
            throws IOException {
        requireWritable(offset);
        if (extendedL2) {
            // (discards, and zeroing a grown area, never write explicit zeroes, so never read below)
            return zeroSubclusters(offset, length, unmap, discard, full, true, BackingReader.ZEROES);
        }
        if ((offset & (clusterSize - 1)) != 0 || offset >= size) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        // a request that reaches the end of the image covers the partial last cluster
        long end = requestEnd == size ? offset + Qcow2Checks.divCeil(size - offset, clusterSize) * clusterSize
                : requestEnd & ~(long) (clusterSize - 1);
        long pos = offset;
        allocLock.lock();
        try {
            while (pos < end) {
                awaitClusters(pos >>> clusterBits, pos >>> clusterBits);
                if (!zeroCluster(pos, unmap, discard, full)) {
                    break;
                }
                pos += clusterSize;
            }
        } finally {
            allocLock.unlock();
        }
        return Math.min(pos, requestEnd) - offset;
    }

    private boolean hasBackingFile() {
        return header.backingFile().filter(n -> !n.isEmpty()).isPresent();
    }

    /**
     * One whole cluster (standard L2 entries) of a zero write, a discard or ({@code full}) a full discard, leaving
     * the entry QEMU 7.2 leaves (zero_in_l2_slice, discard_in_l2_slice):
     * <ul>
     * <li>a zero write (v3) sets the zero flag, with or without a backing file, and lets go of the host cluster of
     *     a compressed cluster and, with {@code unmap}, of any other; otherwise the cluster keeps its host cluster,
     *     even one shared with a snapshot (a later write copies it);
     * <li>a discard, and a v2 zero write without a backing file, lets go of the host cluster and leaves a zero
     *     cluster (v3) or an unallocated one (v2); an unallocated cluster stays so unless there is a backing file;
     * <li>a full discard leaves the entry empty, so that reads fall through to the backing file;
     * <li>on v2 with a backing file, a zero write is left to the caller (explicit zeroes, false) and a discard
     *     keeps the data, which a discard allows (QEMU refuses it so as not to expose the backing file's data).
     * </ul>
     * As in QEMU, the L2 table is allocated, or copied from a snapshot, even when the entry stays as it is
     * (except for a full discard). The entry changes before the refcount of what it pointed at drops (on the
     * next flush); a raw external data file is zeroed where the guest's bytes become zero. False when there is
     * no room for an L2 table. Under allocLock.
     */
    private boolean zeroCluster(long pos, boolean unmap, boolean discard, boolean full) throws IOException {
        boolean backing = hasBackingFile();
        boolean v3 = header.version() >= 3;
        if (!v3 && backing && !full) {
            return discard;
        }
        Kind kind = unit(pos).kind();
        long cluster = pos >>> clusterBits;
        int l1Index = (int) (cluster >>> l2Bits);
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long l1e = l1[l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
        long entry = l2Offset == 0 ? 0 : cache.get(l2Offset, this::loadL2)[index];
        boolean allocated = kind == Kind.DATA || kind == Kind.ZERO_ALLOC || kind == Kind.COMPRESSED;
        if (sharedL2 && (entry & COPIED) != 0) {
            throw corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
        }
        long newEntry;
        if (full) {
            newEntry = 0;
        } else if (discard || !v3) {
            newEntry = backing || allocated ? (v3 ? ZERO_FLAG : 0) : entry;
        } else {
            boolean drop = kind == Kind.COMPRESSED || unmap && allocated;
            newEntry = (drop ? 0 : entry) | ZERO_FLAG;
        }
        if (newEntry == entry && (full || l2Offset != 0 && !sharedL2)) {
            return true;
        }
        if (l2Offset == 0 || sharedL2) {
            if (!refcounts.canAllocate(1)) {
                return false;
            }
            l2Offset = l2Offset == 0 ? allocateL2(l1Index) : copyL2(l1Index, l2Offset);
        }
        if (newEntry != entry) {
            setL2Entry(l2Offset, index, newEntry);
            // (a data file cluster is the image's own by COPIED, even at host offset 0)
            boolean letGo = allocated && (newEntry & (OFFSET_MASK | COPIED)) == 0;
            if (header.hasDataFile()) {
                if (letGo || kind == Kind.DATA && header.dataFileRaw()) {
                    clearDataFile(entry & OFFSET_MASK);
                }
            } else if (letGo) {
                dropReference(entry);
            }
        }
        return true;
    }

    @Override
    public void checkBacking(long backingSize, Optional<Instant> backingModified) {
        this.backingSize = backingSize;
    }

    /**
     * Resizes without the backing chain: an image whose backing image would have to be read (it is longer than
     * the image before growing) is refused.
     */
    void resize(long newSize, Preallocation preallocation) throws IOException {
        BackingReader none = (dst, offset) -> {
            throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 resize with backing file", "growing a qcow2 "
                    + "image over its backing image needs the backing chain");
        };
        resize(newSize, preallocation, header.backingFile().filter(n -> !n.isEmpty()).isPresent() ? none
                : BackingReader.ZEROES);
    }

    /**
     * {@inheritDoc} The L1 table grows in place within its clusters or moves to new ones. When the backing
     * image is longer than the old size, the new area reads as zero, as QEMU 7.2's qcow2_co_truncate makes
     * it: explicit zeroes up to the next (sub)cluster boundary, zero clusters after it (qcow2 v3; v2 is
     * refused as QEMU fails it), written before the header gets the new size. Growing an image whose backing
     * file is not open is refused. Everything refused is refused before anything changes.
     */
    @Override
    public void resize(long newSize, Preallocation requested, BackingReader below) throws IOException {
        requireWritable(-1);
        if ((newSize & 511) != 0) {
            // QEMU's message, word for word
            throw new IllegalArgumentException("The new size must be a multiple of 512");
        }
        allocLock.lock();
        try {
            awaitQuiet();
            // preallocation and shrinking look at the file's end: not at a part grown ahead
            trimAhead();
            if (newSize == size) {
                return;
            }
            if (tracker != null) {
                // every bitmap follows the new size: refused for an inconsistent one, as QEMU refuses
                tracker.beforeResize(newSize);
            }
            try {
                resizeLocked(newSize, requested, below);
            } finally {
                if (tracker != null) {
                    tracker.resized(size);
                }
            }
        } finally {
            // the file may have been cut: the next write-back syncs before its L2 tables
            syncedLength = 0;
            allocLock.unlock();
        }
    }

    private void resizeLocked(long newSize, Preallocation requested, BackingReader below) throws IOException {
        long oldSize = size;
        if (newSize < oldSize) {
            if (requested != Preallocation.OFF) {
                throw new IllegalArgumentException(resource
                        + ": Preallocation can only be used for growing images");
            }
            shrink(oldSize, newSize);
            return;
        }
        // as QEMU: the metadata of a raw data file describes all of it, so growing preallocates it
        Preallocation preallocation = requested == Preallocation.OFF && header.hasDataFile()
                && header.dataFileRaw() ? Preallocation.METADATA : requested;
        boolean zeroNew = false;
        if (header.backingFile().filter(n -> !n.isEmpty()).isPresent()) {
            long backing = backingSize;
            if (backing < 0) {
                throw new UnsupportedFeatureException(resource, Feature.BACKING_CHAIN, "qcow2 resize with backing file", "growing a "
                        + "qcow2 image whose backing file is not open (its data could show through)");
            }
            zeroNew = backing > oldSize;
            if (zeroNew && header.version() < 3
                    && newSize > Qcow2Checks.divCeil(oldSize, clusterSize) * clusterSize) {
                // QEMU fails the same way past the old last cluster, which it zeroes explicitly: qcow2 v2 has
                // no zero clusters (qcow2_subcluster_zeroize)
                throw new UnsupportedFeatureException(resource, Feature.ZERO_CLUSTERS, "qcow2 v2 zero clusters",
                        "Failed to zero out new clusters: Operation not supported");
            }
        }
        long[] old = l1;
        long entries = Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        long room = Qcow2Checks.divCeil(old.length * 8L, clusterSize) * clusterSize / 8;
        if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ImageLimitException(resource, 36, "growing to " + newSize + " bytes needs an L1 table of "
                    + entries + " entries: Active L1 table too large");
        }
        long tailHost = -1;
        if (!zeroNew && (oldSize & (clusterSize - 1)) != 0) {
            // the bytes of the last cluster past the old end must read as zero after growing
            Unit tail = unit(oldSize - 1);
            // with extended L2 entries, subclusters past the old end may hold data whatever the last one holds
            boolean hosted = tail.kind() == Kind.DATA
                    || extendedL2 && tail.kind() != Kind.COMPRESSED && tail.host() >= 0;
            if (tail.kind() == Kind.COMPRESSED
                    || hosted && (tail.entry() & COPIED) == 0 && !header.hasDataFile()) {
                // a copy of its own, zeroed past the old end: the shared or compressed original stays as it is
                rewriteTail(oldSize, tail, below);
            } else if (hosted) {
                tailHost = tail.host() + 1;
            }
        }
        if (tailHost >= 0) {
            long n = clusterSize - (oldSize & (clusterSize - 1));
            if (header.hasDataFile()) {
                // a data file is not made longer for this: past its end it reads as zero already
                n = Math.max(0, Math.min(n, dataStorage().size() - tailHost));
            }
            if (n > 0) {
                dataStorage().write(ByteBuffer.allocate((int) n), tailHost);
            }
        }
        if (header.hasDataFile() && preallocation == Preallocation.OFF) {
            // as QEMU, the data file takes the new size exactly (the zeroed tail first, then synced with it)
            Storage data = dataStorage();
            data.resize(newSize, Preallocation.OFF);
            data.sync();
            dataFileSize = newSize;
        }
        long newL1Offset = l1Offset;
        int oldClusters = (int) Qcow2Checks.divCeil(old.length * 8L, clusterSize);
        if (entries > room) {
            // a new, larger L1 table elsewhere: written and synced before the header points at it (as QEMU's
            // qcow2_grow_l1_table); the old one is freed on the next flush
            int clusters = (int) Qcow2Checks.divCeil(entries * 8, clusterSize);
            long first = refcounts.allocateRun(clusters);
            newL1Offset = first << clusterBits;
            ByteBuffer table = ByteBuffer.allocate(clusters * clusterSize).order(ByteOrder.BIG_ENDIAN);
            table.asLongBuffer().put(old);
            storage.write(table, newL1Offset);
            growFile(newL1Offset + (long) clusters * clusterSize);
        } else if (entries > old.length) {
            storage.write(ByteBuffer.allocate((int) ((entries - old.length) * 8)), l1Offset + old.length * 8L);
        }
        // the new L1 entries (zero), a moved table's refcounts and the zeroed tail are on stable media before the
        // header grows
        refcounts.writeDirty();
        syncAll();
        if (zeroNew) {
            // as QEMU's qcow2_grow_l1_table: the header takes the larger L1 table first (the size stays), the
            // new area is zeroed, and only then does the header take the new size
            ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN)
                    .putInt(0, (int) Math.max(entries, old.length)).putLong(4, newL1Offset);
            storage.write(h, 36);
            syncAll();
            switchL1(old, entries, newL1Offset, oldClusters);
            zeroGrown(oldSize, newSize, below);
            ByteBuffer sz = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize);
            storage.write(sz, 24);
            syncAll();
            size = newSize;
            if (preallocation != Preallocation.OFF) {
                // as QEMU's truncate: falloc and full (without a data file) give ordinary data clusters, whose new
                // file space reads as zero; metadata keeps the zero clusters, now with host clusters
                preallocate(oldSize, newSize, preallocation, preallocation != Preallocation.METADATA
                        && !header.hasDataFile(), below);
            }
            return;
        }
        ByteBuffer h = ByteBuffer.allocate(24).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize)
                .putInt(8, header.cryptMethod()).putInt(12, (int) Math.max(entries, old.length))
                .putLong(16, newL1Offset);
        storage.write(h, 24);
        syncAll();
        if (newL1Offset != l1Offset) {
            long oldFirst = l1Offset >>> clusterBits;
            for (int i = 0; i < oldClusters; i++) {
                pendingDecrefs.add(oldFirst + i);
            }
            l1Offset = newL1Offset;
        }
        if (entries > old.length) {
            l1 = java.util.Arrays.copyOf(old, (int) entries);
        }
        size = newSize;
        growFile(Math.max(fileSize, l1Offset + l1.length * 8L));
        if (preallocation != Preallocation.OFF) {
            preallocate(oldSize, newSize, preallocation, false, below);
        }
    }

    /** Makes the grown L1 table (whose header fields are written and synced) the active one. */
    private void switchL1(long[] old, long entries, long newL1Offset, int oldClusters) {
        if (newL1Offset != l1Offset) {
            long oldFirst = l1Offset >>> clusterBits;
            for (int i = 0; i < oldClusters; i++) {
                pendingDecrefs.add(oldFirst + i);
            }
            l1Offset = newL1Offset;
        }
        if (entries > old.length) {
            l1 = Arrays.copyOf(old, (int) entries);
        }
        growFile(Math.max(fileSize, l1Offset + l1.length * 8L));
    }

    /**
     * Makes {@code [oldSize, newSize)} read as zero rather than as the backing image, as QEMU 7.2's
     * qcow2_co_truncate with BDRV_REQ_ZERO_WRITE: explicit zeroes (an allocating write, copying the rest of
     * the cluster from {@code below}) up to the next subcluster boundary, zero clusters (or zero subclusters)
     * from there, all written ({@link #flush}) before the caller writes the new size into the header. The
     * virtual size is the new one meanwhile, and goes back to the old one on failure.
     */
    private void zeroGrown(long oldSize, long newSize, BackingReader below) throws IOException {
        long sub = 1L << unitBits;
        long zeroStart = Math.min(newSize, (oldSize + sub - 1) & -sub);
        size = newSize;
        try {
            if (zeroStart > oldSize) {
                writeExplicitZeroes(oldSize, zeroStart, below);
            }
            for (long pos = zeroStart; pos < newSize; ) {
                long n = zeroClusters(pos, newSize - pos, false, false);
                if (n <= 0) {
                    throw new IllegalStateException(resource + ": cannot zero the new cluster at " + pos);
                }
                pos += n;
            }
            // the zero entries reach stable media (tables in dependency order) before the header's new size
            flush();
        } catch (IOException | RuntimeException e) {
            size = oldSize;
            throw e;
        }
    }

    /**
     * Copies the last, partial cluster of an image about to grow, which is compressed or shared with a
     * snapshot, to a new cluster of its own with the bytes past the old end zeroed (copying its L2 table
     * first when a snapshot shares it): synced before the L2 entry points at it; the old cluster loses the
     * reference on the next flush.
     */
    private void rewriteTail(long oldSize, Unit tail, BackingReader below) throws IOException {
        long clusterStart = (oldSize - 1) & ~(long) (clusterSize - 1);
        long guestCluster = clusterStart >>> clusterBits;
        int l1Index = (int) (guestCluster >>> l2Bits);
        int index = (int) (guestCluster & ((1L << l2Bits) - 1));
        long l1e = l1[l1Index];
        boolean sharedL2 = (l1e & COPIED) == 0;
        if (!refcounts.canAllocate(sharedL2 ? 2 : 1)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                    "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
        }
        long l2Offset = l1e & OFFSET_MASK;
        if (sharedL2) {
            // the table is a snapshot's too: the active image gets its own copy before the entry changes
            l2Offset = copyL2(l1Index, l2Offset);
        }
        long entry = tail.entry();
        byte[] plain;
        if (tail.kind() == Kind.COMPRESSED) {
            plain = decompressed(entry, clusterStart).clone();
        } else if (extendedL2) {
            // the guest's view: unallocated subclusters read from below (zeroes without a backing file)
            long bitmap = cache.get(l2Offset, this::loadL2)[2 * index + 1];
            plain = new byte[clusterSize];
            subclusterSource(clusterStart, entry & OFFSET_MASK, bitmap, below)
                    .read(ByteBuffer.wrap(plain), clusterStart);
        } else {
            plain = new byte[clusterSize];
            storage.read(ByteBuffer.wrap(plain), entry & OFFSET_MASK);
        }
        Arrays.fill(plain, (int) (oldSize - clusterStart), clusterSize, (byte) 0);
        long c = refcounts.allocate();
        long host = c << clusterBits;
        try {
            storage.write(ByteBuffer.wrap(plain), host);
            growFile(host + clusterSize);
            syncAll();
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        long newEntry = host | COPIED;
        if (extendedL2) {
            // the whole cluster was copied: every subcluster is allocated
            setExtendedL2Entry(l2Offset, index, newEntry, SUB_ALLOC_ALL);
        } else {
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newEntry);
            storage.write(e, l2Offset + index * 8L);
            cache.get(l2Offset, this::loadL2)[index] = newEntry;
        }
        dropReference(entry);
    }

    /**
     * Shrinks as QEMU's qcow2_co_truncate does: the clusters past the new end are unmapped (their L2
     * entries cleared first, the refcounts dropped after a sync), L1 entries past the new end are cleared
     * and synced before their L2 tables are freed (the L1 table keeps its size, as in QEMU), the header gets
     * the new size, refcount blocks that count nothing but themselves leave the refcount table, and the file
     * is cut after the last cluster in use. Internal snapshots keep their clusters: L2 tables shared with
     * them are copied before entries change, and shared clusters only lose the active image's reference.
     */
    private void shrink(long oldSize, long newSize) throws IOException {
        long from = Qcow2Checks.divCeil(newSize, clusterSize) * clusterSize;
        for (long pos = from; pos < oldSize; pos += clusterSize) {
            int l1Index = (int) (pos >>> (clusterBits + l2Bits));
            long l2Offset = l1[l1Index] & OFFSET_MASK;
            if (l2Offset == 0) {
                pos = ((long) (l1Index + 1) << (clusterBits + l2Bits)) - clusterSize;
                continue;
            }
            unit(pos); // validates the entry before it is dropped
            int index = (int) ((pos >>> clusterBits) & ((1L << l2Bits) - 1));
            // with extended L2 entries, entry i is table words 2i (entry) and 2i + 1 (subcluster bitmap)
            int word = extendedL2 ? 2 * index : index;
            long[] table = cache.get(l2Offset, this::loadL2);
            long entry = table[word];
            boolean used = entry != 0 || extendedL2 && table[word + 1] != 0;
            if (used && (l1[l1Index] & COPIED) == 0) {
                // an L2 table shared with a snapshot is copied before it changes, as QEMU's discard does
                if (!refcounts.canAllocate(1)) {
                    throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                            "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
                }
                l2Offset = copyL2(l1Index, l2Offset);
                table = cache.get(l2Offset, this::loadL2);
            }
            if (used) {
                ByteBuffer e = ByteBuffer.allocate(extendedL2 ? 16 : 8).order(ByteOrder.BIG_ENDIAN);
                storage.write(e, l2Offset + word * 8L);
                table[word] = 0;
                if (extendedL2) {
                    table[word + 1] = 0;
                }
                if (header.hasDataFile()) {
                    // not refcounted: a raw data file is zeroed, otherwise the space is given back
                    if ((entry & OFFSET_MASK) != 0 || (entry & COPIED) != 0) {
                        clearDataFile(pos);
                    }
                } else {
                    dropReference(entry);
                }
            }
        }
        long[] old = l1;
        int newL1Size = (int) Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        if (newL1Size < old.length) {
            storage.write(ByteBuffer.allocate((old.length - newL1Size) * 8), l1Offset + newL1Size * 8L);
            long[] shorter = old.clone();
            for (int i = newL1Size; i < old.length; i++) {
                long l2Offset = old[i] & OFFSET_MASK;
                if (l2Offset != 0) {
                    pendingDecrefs.add(l2Offset >>> clusterBits);
                    cache.invalidate(l2Offset);
                    shorter[i] = 0;
                }
            }
            l1 = shorter;
        }
        // the cleared entries reach stable media (in flush, before the refcounts drop) before the header shrinks
        flush();
        ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize);
        storage.write(h, 24);
        syncAll();
        size = newSize;
        if (header.hasDataFile()) {
            // as QEMU, the data file takes the new size exactly, after the header (nothing past it is referenced)
            Storage data = dataStorage();
            data.resize(newSize, Preallocation.OFF);
            dataFileSize = newSize;
        }
        refcounts.dropUnusedBlocks();
        long fileEnd = storage.size();
        long last = refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize));
        if ((last + 1) * clusterSize < fileEnd) {
            storage.resize((last + 1) * clusterSize, Preallocation.OFF);
        }
    }

    /**
     * Preallocates the guest range {@code [from, to)} as QEMU's qcow2 truncate does: every unallocated
     * cluster gets an L2 entry and a host cluster; with {@code metadata} the host clusters stay holes of the
     * file (reading as zero), with {@code falloc} and {@code full} the file's new space is reserved or
     * written with zeroes. Host clusters reused below the old end of the file are zeroed first. Per L2 table:
     * the refcounts (and the zeroing) are synced before the L2 entries are written. Called with the
     * allocation lock held, by create and by resize. With extended L2 entries, as in QEMU 7.2, the entries
     * get their host clusters but their subcluster bitmaps stay as they are (new ones: all unallocated, reading
     * from the backing file or as zero), nothing is written into the clusters, and the file ends where the
     * guest's last byte would be; zero clusters keep their flag.
     */
    void preallocate(long from, long to, Preallocation mode) throws IOException {
        preallocate(from, to, mode, false, BackingReader.ZEROES);
    }

    /**
     * {@link #preallocate(long, long, Preallocation)} reading the head of the old last cluster from {@code below};
     * with {@code allocated} (falloc or full over a longer backing file, whose new area was zeroed: as QEMU's
     * truncate, which then lets the file's new space provide the zeroes) the clusters become ordinary data: no
     * zero flag, every subcluster allocated, the guest's view of the old last cluster written into it.
     */
    private void preallocate(long from, long to, Preallocation mode, boolean allocated, BackingReader below)
            throws IOException {
        requireWritable(-1);
        allocLock.lock();
        try {
            awaitQuiet();
            if (header.hasDataFile()) {
                preallocateDataFile(from, to, mode, below);
                return;
            }
            long oldEnd = storage.size();
            long c = from >>> clusterBits;
            long last = Qcow2Checks.divCeil(to, clusterSize);
            // moderate runs, which fill holes of covered space first
            int maxRun = refcounts.maxRun();
            long lastHost = -1;
            long lastEnd = -1;
            while (c < last) {
                int l1Index = (int) (c >>> l2Bits);
                long l1e = l1[l1Index];
                long l2Offset = l1e & OFFSET_MASK;
                if (l2Offset == 0) {
                    l2Offset = allocateL2(l1Index);
                } else if ((l1e & COPIED) == 0) {
                    l2Offset = copyL2(l1Index, l2Offset);
                }
                long[] table = cache.get(l2Offset, this::loadL2);
                int start = (int) (c & ((1L << l2Bits) - 1));
                int end = (int) Math.min(1L << l2Bits, start + (last - c));
                // with extended L2 entries, entry i is words 2i (entry) and 2i + 1 (subcluster bitmap)
                int w = extendedL2 ? 2 : 1;
                long[] entries = Arrays.copyOfRange(table, start * w, end * w);
                int count = end - start;
                boolean changed = false;
                long growTo = storage.size();
                for (int i = 0; i < count; ) {
                    if (!unhosted(entries[i * w])) {
                        if (allocated) {
                            changed |= materialize(entries, i, w, (c + i) << clusterBits, below);
                        }
                        i++;
                        continue;
                    }
                    int n = 1;
                    while (i + n < count && n < maxRun && unhosted(entries[(i + n) * w])) {
                        n++;
                    }
                    long sizeBefore = storage.size();
                    long host = refcounts.allocateRun(n) << clusterBits;
                    long runEnd = host + (long) n * clusterSize;
                    long guest = (c + i) << clusterBits;
                    long lastGuest = (c + i + n - 1) << clusterBits;
                    // as QEMU's preallocate_co: with extended L2 entries nothing is written (the subclusters stay
                    // unallocated, so nothing is copied on allocation), and the file ends where the guest does
                    long fileEnd = extendedL2 && mode == Preallocation.METADATA
                            ? Math.min(runEnd, runEnd - clusterSize + (to - lastGuest)) : runEnd;
                    if (fileEnd > storage.size()) {
                        // before the writes below, which would grow the file without reserving space
                        storage.resize(fileEnd, mode == Preallocation.METADATA ? Preallocation.OFF : mode);
                    } else if (mode != Preallocation.METADATA && fileEnd > Math.max(sizeBefore, host)) {
                        // refcount blocks the run needed went right after it, growing the file over the run without
                        // reserving its space: reserve it now
                        long at = Math.max(sizeBefore, host);
                        storage.writeZeroes(at, fileEnd - at, false);
                    }
                    if (host < oldEnd) {
                        // freed clusters may hold old data: they must read as zero like the new space
                        long zeroEnd = Math.min(runEnd, oldEnd);
                        storage.writeZeroes(host, zeroEnd - host, mode == Preallocation.METADATA);
                    }
                    if ((!extendedL2 || allocated) && guest < from) {
                        // the old last cluster: QEMU copies its head (what the guest reads there) on allocation
                        long e = entries[i * w];
                        ByteBuffer head = ByteBuffer.allocate((int) (from - guest));
                        (extendedL2 ? subclusterSource(guest, 0, entries[i * w + 1], below)
                                : (e & ZERO_FLAG) != 0 ? BackingReader.ZEROES : below).read(head, guest);
                        storage.write(head.flip(), host);
                    }
                    if (!extendedL2 && lastGuest + clusterSize > to) {
                        // the new last cluster: QEMU copies its tail (zeroes) on allocation, so it is written
                        storage.write(ByteBuffer.allocate((int) (lastGuest + clusterSize - to)),
                                runEnd - (lastGuest + clusterSize - to));
                    }
                    growTo = Math.max(growTo, fileEnd);
                    lastHost = runEnd - clusterSize;
                    lastEnd = fileEnd;
                    for (int k = 0; k < n; k++) {
                        // a zero cluster stays one (as in QEMU), now with a host cluster; a subcluster bitmap stays
                        int at = (i + k) * w;
                        entries[at] = (host + (long) k * clusterSize) | COPIED
                                | (allocated ? 0 : entries[at] & ZERO_FLAG);
                        if (allocated && extendedL2) {
                            entries[at + 1] = SUB_ALLOC_ALL;
                        }
                    }
                    changed = true;
                    i += n;
                }
                if (changed) {
                    growFile(growTo);
                    // the refcounts and the zeroed clusters reach stable media before the L2 entries
                    syncAll();
                    ByteBuffer b = ByteBuffer.allocate(entries.length * 8).order(ByteOrder.BIG_ENDIAN);
                    b.asLongBuffer().put(entries);
                    storage.write(b, l2Offset + start * 8L * w);
                    System.arraycopy(entries, 0, table, start * w, entries.length);
                }
                c += end - start;
            }
            if (lastHost >= 0) {
                // QEMU's file ends with the last preallocated cluster (for metadata preallocation, with its last
                // table): nothing is counted past it, so end the file there
                long used = Qcow2Checks.divCeil(storage.size(), clusterSize) - 1;
                while (used >= 0 && refcounts.get(used) == 0) {
                    used--;
                }
                long end = lastEnd;
                if (used == lastHost >>> clusterBits && storage.size() > end) {
                    storage.resize(end, Preallocation.OFF);
                }
            }
        } finally {
            allocLock.unlock();
        }
    }

    /**
     * For {@link #preallocate} with {@code allocated}: makes the cluster of entry {@code i} (with a host cluster)
     * ordinary data, its host cluster holding what the guest reads there (zeroes for a zero cluster, zero or
     * unallocated subclusters read as they read now); not for compressed clusters or clusters a snapshot shares.
     * Returns whether the entry changed; the caller syncs before writing it.
     */
    private boolean materialize(long[] entries, int i, int w, long guest, BackingReader below) throws IOException {
        long e = entries[i * w];
        if ((e & COMPRESSED) != 0 || (e & COPIED) == 0) {
            return false;
        }
        long host = e & OFFSET_MASK;
        if (!extendedL2) {
            if ((e & ZERO_FLAG) == 0) {
                return false;
            }
            storage.writeZeroes(host, clusterSize, false);
            entries[i] = e & ~ZERO_FLAG;
            return true;
        }
        long bitmap = entries[i * w + 1];
        if (bitmap == SUB_ALLOC_ALL) {
            return false;
        }
        byte[] view = new byte[clusterSize];
        subclusterSource(guest, host, bitmap, below).read(ByteBuffer.wrap(view), guest);
        storage.write(ByteBuffer.wrap(view), host);
        entries[i * w + 1] = SUB_ALLOC_ALL;
        return true;
    }

    /** Whether an L2 entry (the first word of an extended one) has no host cluster and is not compressed. */
    private static boolean unhosted(long entry) {
        return (entry & COMPRESSED) == 0 && (entry & OFFSET_MASK) == 0;
    }

    /**
     * {@link #preallocate} with an external data file, as QEMU's preallocate_co: every cluster without one
     * gets the data file cluster at its guest offset (not refcounted); the data file grows to the end of the
     * last cluster ({@code falloc} and {@code full} reserve or write the new space), clusters below its old
     * end are zeroed, and all that is synced before the L2 entries of each table point at them. Under the
     * allocation lock. Zero clusters keep their flag and subcluster bitmaps stay as they are, so that a backing
     * file still shows through unallocated subclusters, as in QEMU.
     */
    private void preallocateDataFile(long from, long to, Preallocation mode, BackingReader below) throws IOException {
        Storage data = dataStorage();
        long oldEnd = data.size();
        long last = Qcow2Checks.divCeil(to, clusterSize);
        int w = extendedL2 ? 2 : 1;
        long lastL2 = l1[(int) ((last - 1) >>> l2Bits)] & OFFSET_MASK;
        long lastEntry = lastL2 == 0 ? 0
                : cache.get(lastL2, this::loadL2)[(int) ((last - 1) & ((1L << l2Bits) - 1)) * w];
        // QEMU writes the tail of a new last cluster (zeroes, its copy-on-write), so the file then ends with it;
        // an allocated last cluster, or one with extended L2 entries (nothing is copied), only makes the file reach
        // the new size
        long end = extendedL2 || (lastEntry & OFFSET_MASK) != 0 || (lastEntry & COPIED) != 0 ? to
                : last << clusterBits;
        if (end > oldEnd) {
            data.resize(end, mode == Preallocation.METADATA ? Preallocation.OFF : mode);
            dataFileSize = end;
        }
        long c = from >>> clusterBits;
        while (c < last) {
            int l1Index = (int) (c >>> l2Bits);
            long l2Offset = l1[l1Index] & OFFSET_MASK;
            if (l2Offset == 0) {
                l2Offset = allocateL2(l1Index);
            }
            long[] table = cache.get(l2Offset, this::loadL2);
            int start = (int) (c & ((1L << l2Bits) - 1));
            int stop = (int) Math.min(1L << l2Bits, start + (last - c));
            // with extended L2 entries, entry i is words 2i (entry) and 2i + 1 (subcluster bitmap, kept as it is)
            long[] entries = Arrays.copyOfRange(table, start * w, stop * w);
            boolean changed = false;
            for (int i = 0; i < stop - start; i++) {
                long e = entries[i * w];
                // with a data file, COPIED alone marks guest cluster 0 as allocated
                if ((e & OFFSET_MASK) != 0 || (e & COPIED) != 0) {
                    continue;
                }
                long host = (c + i) << clusterBits;
                if (host < oldEnd) {
                    // the data file may hold old bytes there: the cluster must read as zero, as it did
                    data.writeZeroes(host, Math.min(clusterSize, oldEnd - host), mode == Preallocation.METADATA);
                }
                if (host < from && !extendedL2 && (e & ZERO_FLAG) == 0) {
                    // the old last cluster read from below: QEMU copies its head on allocation
                    ByteBuffer head = ByteBuffer.allocate((int) (from - host));
                    below.read(head, host);
                    data.write(head.flip(), host);
                }
                // a zero cluster stays one, now with its data file cluster (as in QEMU)
                entries[i * w] = host | COPIED | (e & ZERO_FLAG);
                changed = true;
            }
            if (changed) {
                // the grown and zeroed data file reaches stable media before the L2 entries point into it
                data.sync();
                syncAll();
                ByteBuffer b = ByteBuffer.allocate(entries.length * 8).order(ByteOrder.BIG_ENDIAN);
                b.asLongBuffer().put(entries);
                storage.write(b, l2Offset + start * 8L * w);
                System.arraycopy(entries, 0, table, start * w, entries.length);
            }
            c += stop - start;
        }
        // QEMU's image file ends with its last table: end it after the last cluster in use
        long fileEnd = storage.size();
        long used = refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize));
        if ((used + 1) * clusterSize < fileEnd) {
            storage.resize((used + 1) * clusterSize, Preallocation.OFF);
        }
    }

    /**
     * Copies the L2 table of L1 entry {@code l1Index}, which is shared with a snapshot, to a new cluster:
     * synced before the L1 entry points at it; the old table loses the active image's reference on the next
     * flush. The entries keep their flags: the data clusters stay shared.
     */
    private long copyL2(int l1Index, long oldL2) throws IOException {
        long[] table = cache.get(oldL2, this::loadL2).clone();
        long c = refcounts.allocate();
        long l2 = c << clusterBits;
        try {
            ByteBuffer b = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
            b.asLongBuffer().put(table);
            storage.write(b, l2);
            growFile(l2 + clusterSize);
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        // the L1 entry reaches the disk in writeBack, after the copy and its refcount are synced; the old
        // table loses the active image's reference only after that
        l1[l1Index] = l2 | COPIED;
        dirtyL1.set(l1Index);
        pendingDecrefs.add(oldL2 >>> clusterBits);
        return l2;
    }

    /** Queues the refcount drops for the clusters an L2 entry that was just replaced referenced. */
    private void dropReference(long entry) {
        if ((entry & COMPRESSED) != 0) {
            compressedClusters(entry, pendingDecrefs);
        } else if ((entry & OFFSET_MASK) != 0) {
            pendingDecrefs.add((entry & OFFSET_MASK) >>> clusterBits);
        }
    }

    /** Adds the host clusters that compressed L2 entry {@code entry} holds a reference to. */
    private void compressedClusters(long entry, List<Long> out) {
        int x = 62 - (clusterBits - 8);
        long host = entry & ((1L << x) - 1);
        long sectors = ((entry >>> x) & ((1L << (clusterBits - 8)) - 1)) + 1;
        long start = host & ~511L;
        long end = start + sectors * 512;
        for (long c = start >>> clusterBits; c <= (end - 1) >>> clusterBits; c++) {
            out.add(c);
        }
    }

    /**
     * Allocates a zeroed L2 table for L1 entry {@code l1Index}: refcounted and written before the L1
     * entry points at it.
     */
    private long allocateL2(int l1Index) throws IOException {
        long c = refcounts.allocate();
        long l2 = c << clusterBits;
        try {
            storage.write(ByteBuffer.allocate(clusterSize), l2);
            growFile(l2 + clusterSize);
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        // the L1 entry reaches the disk in writeBack, after the empty table and its refcount are synced
        l1[l1Index] = l2 | COPIED;
        dirtyL1.set(l1Index);
        return l2;
    }

    private void growFile(long end) {
        if (end > fileSize) {
            fileSize = end;
        }
    }

    /** Fills the parts of the cluster at {@code host} outside the write from {@code source}. */
    private void copyOnWrite(long host, long clusterStart, int inCluster, int n, BackingReader source)
            throws IOException {
        if (inCluster > 0) {
            copyPart(host, clusterStart, 0, inCluster, source);
        }
        if (inCluster + n < clusterSize) {
            copyPart(host, clusterStart, inCluster + n, clusterSize, source);
        }
    }

    private void copyPart(long host, long clusterStart, int from, int to, BackingReader source) throws IOException {
        // only bytes inside the virtual size come from below; the rest of the last cluster is zero
        long readable = Math.max(0, Math.min(to, size - clusterStart) - from);
        if (source == BackingReader.ZEROES || readable == 0) {
            // as QEMU's handle_alloc_space: a part known to be zero is zeroed in the file (sparse where the file
            // system can), not written, so the file's allocation and its map match qemu-img's
            dataStorage().writeZeroes(host + from, to - from, false);
            copiedSinceSync = true;
            return;
        }
        ByteBuffer buf = ByteBuffer.allocate(to - from);
        if (readable > 0) {
            source.read(buf.limit((int) readable), clusterStart + from);
        }
        dataStorage().write(buf.clear(), host + from);
        copiedSinceSync = true;
    }

    /**
     * Finishes a write begun by {@link #ensureDataMapping}: the data was written ({@code failure} is
     * {@code null}), so the metadata may point at it; or it failed, and the allocation is given back.
     */
    void completeWrite(Mapping.Data mapping, IOException failure) throws IOException {
        if (inFlightWrites > 0 && !allocLock.isHeldByCurrentThread()) {
            allocLock.lock();
            try {
                Pending p = inFlight.remove(mapping);
                if (p != null) {
                    try {
                        commit(p, failure);
                    } finally {
                        for (int k = 0; k < p.count(); k++) {
                            inFlightClusters.remove((mapping.offset() >>> clusterBits) + k);
                        }
                        inFlightWrites = inFlight.size();
                        inFlightDone.signalAll();
                    }
                    return;
                }
            } finally {
                allocLock.unlock();
            }
        }
        if (!allocLock.isHeldByCurrentThread() || pending == null || pending.mapping() != mapping) {
            if (inPlace.getReadHoldCount() > 0) {
                inPlace.readLock().unlock();
            }
            return;
        }
        Pending p = pending;
        pending = null;
        try {
            commit(p, failure);
        } finally {
            allocLock.unlock();
        }
    }

    /**
     * Commits an allocating write: the data is written, so its L2 entries may point at it (in memory; on
     * disk only after the data, copied parts included, and the refcounts are on stable media, as QEMU's
     * perform_cow and cache dependencies order them); or, after a failure, gives its clusters back. Under
     * allocLock.
     */
    private void commit(Pending p, IOException failure) throws IOException {
        if (failure == null) {
            for (int k = 0; k < p.count(); k++) {
                if (extendedL2) {
                    setExtendedL2Entry(p.l2Offset(), p.index() + k, p.entry() + ((long) k << clusterBits),
                            p.bitmaps()[k]);
                } else {
                    setL2Entry(p.l2Offset(), p.index() + k, p.entry() + ((long) k << clusterBits));
                }
            }
            dropReference(p.replaced());
        } else if (p.allocated() >= 0) {
            for (int k = 0; k < p.count(); k++) {
                refcounts.free(p.allocated() + k);
            }
        }
    }

    /** Waits (under allocLock, which it releases meanwhile) until no write in flight covers clusters [first, last]. */
    private void awaitClusters(long first, long last) {
        while (inFlightWrites > 0 && covered(first, last)) {
            inFlightDone.awaitUninterruptibly();
        }
    }

    private boolean covered(long first, long last) {
        for (long c = first; c <= last; c++) {
            if (inFlightClusters.contains(c)) {
                return true;
            }
        }
        return false;
    }

    /** Waits (under allocLock) until no write is in flight: for operations that change many tables at once. */
    private void awaitQuiet() {
        while (inFlightWrites > 0) {
            inFlightDone.awaitUninterruptibly();
        }
    }

    /**
     * {@inheritDoc} Every cluster of the active image becomes unallocated (QEMU's full discard); tables
     * without an L2 table are skipped, so the work follows what is allocated, not the virtual size.
     */
    @Override
    public void makeEmpty() throws IOException {
        requireWritable(0);
        long span = 1L << (clusterBits + l2Bits);
        for (int i = 0; i < l1.length && (long) i * span < size; i++) {
            if ((l1[i] & OFFSET_MASK) == 0) {
                continue;
            }
            long pos = i * span;
            long end = Math.min(pos + span, size);
            while (pos < end) {
                long handled = zeroClusters(pos, end - pos, true, true, true);
                if (handled == 0) {
                    throw new ImageException(resource, pos, "cannot unmap the cluster at guest offset " + pos
                            + ": no room to copy its shared L2 table", null);
                }
                pos += handled;
            }
        }
        flush();
    }

    /**
     * {@inheritDoc} Cluster 0 is rewritten in one write, as QEMU rewrites it, and synced; the new
     * reference takes effect for this instance at once (copy-on-write and zeroing consult it).
     */
    @Override
    public void changeBackingFile(String file, String format) throws IOException {
        requireWritable(0);
        if (format != null && file == null) {
            throw new IllegalArgumentException("a backing format needs a backing file");
        }
        if (file != null && header.hasDataFile() && header.dataFileRaw()) {
            throw new UnsupportedFeatureException(resource, Feature.EXTERNAL_DATA_FILE, "qcow2 backing file with data_file_raw",
                    "an image whose external data file is raw cannot have a backing file");
        }
        allocLock.lock();
        try {
            awaitQuiet();
            ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
            storage.read(cluster0, 0);
            byte[] updated = header.withBacking(cluster0.array(), resource, file, format);
            Qcow2Header parsed = Qcow2Header.parse(ByteBuffer.wrap(updated), resource, storage.size());
            storage.write(ByteBuffer.wrap(updated), 0);
            storage.flush();
            syncAll();
            header = parsed;
            backingSize = -1; // the new backing image is not known until it is opened
        } finally {
            allocLock.unlock();
        }
    }

    /**
     * Syncs the storage with the cached refcount changes written first: writing refcounts early is always
     * safe (see the package documentation), and whatever a sync orders after it may then rely on them.
     */
    private void syncAll() throws IOException {
        if (refcounts != null) {
            refcounts.writeDirty();
        }
        storage.sync();
    }

    /** As {@link #syncAll}, but while refcounts may be stale on disk (lazy, dirty image) they wait for the close. */
    private void syncMetadata() throws IOException {
        if (!refcountsStale()) {
            refcounts.writeDirty();
        }
        storage.sync();
    }

    /** Whether refcounts are kept lazily: the image has the lazy refcounts bit (QEMU's use_lazy_refcounts). */
    private boolean lazyRefcounts() {
        return refcounts != null && header.lazyRefcounts() && header.version() >= 3;
    }

    /**
     * Whether the refcounts on disk may disagree with the tables: the dirty bit is set on disk (QEMU's
     * !qcow2_need_accurate_refcounts), so a crash is followed by a refcount rebuild.
     */
    private boolean refcountsStale() {
        return header.dirty();
    }

    /**
     * Sets the dirty bit (QEMU's qcow2_mark_dirty): written and synced before the first L2 update that may
     * reach the disk ahead of its refcounts. Under allocLock.
     */
    private void markDirty() throws IOException {
        Qcow2Header h = header;
        if (h.dirty()) {
            return;
        }
        long features = h.incompatibleFeatures() | Qcow2Header.INCOMPAT_DIRTY;
        long length = storage.size();
        storage.write(ByteBuffer.allocate(8).putLong(0, features), 72);
        storage.flush();
        storage.sync();
        // only an image whose header says dirty may have stale refcounts
        header = h.withIncompatibleFeatures(features);
        // the sync covered the copied data and the file's growth too
        copiedSinceSync = false;
        syncedLength = length;
    }

    /**
     * Clears the dirty bit that {@link #markDirty} set (QEMU's qcow2_mark_clean): every cached table and
     * refcount is written and synced first, and the cleared bit is synced. Nothing changes when the image is not
     * dirty, or when writing fails (the image stays dirty: its next writable open rebuilds the refcounts).
     */
    private void markClean() throws IOException {
        if (refcounts == null || !header.dirty() && !grownAhead) {
            return;
        }
        flush();
        allocLock.lock();
        try {
            awaitQuiet();
            writeBack();
            refcounts.writeDirty();
            trimAhead();
            storage.flush();
            storage.sync();
            Qcow2Header h = header;
            if (h.dirty()) {
                long features = h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY;
                storage.write(ByteBuffer.allocate(8).putLong(0, features), 72);
                storage.flush();
                storage.sync();
                header = h.withIncompatibleFeatures(features);
            }
        } finally {
            allocLock.unlock();
        }
    }

    /**
     * Cuts what {@link #writeBack} grew the file by ahead and nothing uses, so that the file ends after its last
     * cluster in use, as QEMU's does (the refcounts in memory are exact).
     * Under allocLock.
     */
    private void trimAhead() throws IOException {
        if (!grownAhead) {
            return;
        }
        long fileEnd = storage.size();
        long end = (refcounts.lastUsed(Qcow2Checks.divCeil(fileEnd, clusterSize)) + 1) * clusterSize;
        if (end < fileEnd) {
            storage.resize(end, Preallocation.OFF);
            syncedLength = Math.min(syncedLength, end);
        }
        grownAhead = false;
    }

    // ------------------------------------------------------------------ extended L2 entries (subclusters)

    /** Extended L2 bitmap: the 32 "subcluster allocated" bits. */
    static final long SUB_ALLOC_ALL = 0xFFFF_FFFFL;
    /** Extended L2 bitmap: the 32 "subcluster reads as zero" bits. */
    static final long SUB_ZERO_ALL = 0xFFFF_FFFF_0000_0000L;
    /** Ordered stores of L2 words, so that lock-free readers never see an impossible entry/bitmap pair. */
    private static final java.lang.invoke.VarHandle WORDS = java.lang.invoke.MethodHandles.arrayElementVarHandle(
            long[].class);

    /** The "allocated" bits of subclusters {@code from} (inclusive) to {@code to} (exclusive). */
    private static long subclusterMask(int from, int to) {
        return (SUB_ALLOC_ALL >>> (32 - (to - from))) << from;
    }

    /**
     * {@code bitmap} with the subclusters that bytes {@code [from, to)} of the cluster touch allocated (their
     * zero bits cleared).
     */
    private long withAllocated(long bitmap, int from, int to) {
        long mask = subclusterMask(from >>> unitBits, (to + (1 << unitBits) - 1) >>> unitBits);
        return (bitmap | mask) & ~(mask << 32);
    }

    /**
     * Where the extended L2 entry of guest cluster {@code cluster} is, and what it holds.
     *
     * @param l2Offset the L2 table, 0 if there is none
     * @param sharedL2 whether the table is shared with a snapshot (its L1 entry lacks COPIED)
     * @param entry the entry word (0 without a table)
     * @param bitmap the subcluster bitmap word (0 without a table)
     */
    private record ExtendedSlot(long cluster, int l1Index, int index, long l2Offset, boolean sharedL2, long entry,
            long bitmap) {
    }

    /** The extended L2 entry for guest offset {@code pos}, validated (as {@link #unit}) before anything changes. */
    private ExtendedSlot extendedSlot(long pos) throws IOException {
        unit(pos);
        long cluster = pos >>> clusterBits;
        int l1Index = (int) (cluster >>> l2Bits);
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long l1e = l1[l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
        long entry = 0;
        long bitmap = 0;
        if (l2Offset != 0) {
            long[] table = cache.get(l2Offset, this::loadL2);
            entry = table[2 * index];
            bitmap = table[2 * index + 1];
        }
        if (sharedL2 && (entry & COPIED) != 0) {
            throw corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
        }
        return new ExtendedSlot(cluster, l1Index, index, l2Offset, sharedL2, entry, bitmap);
    }

    /**
     * {@link #ensureDataMapping} for images with extended L2 entries, within one cluster (or a run of clusters
     * that hold nothing, {@link #allocateSubclusterRun}), as QEMU does it:
     * only the subclusters the write touches become allocated, and only their parts outside the write are
     * filled (copy-on-write from below, zeroes for zero subclusters); untouched subclusters stay as they are.
     * A cluster of ours (COPIED) is written in place, its bitmap changing on commit; a cluster without host
     * space gets a new one. A compressed cluster is rewritten whole into a new cluster; one shared with a
     * snapshot is copied from its first to its last allocated subcluster (the write included) and loses the
     * reference on commit. Under allocLock; sets {@link #pending} unless the write lands in allocated
     * subclusters of our cluster, which takes the inPlace read lock.
     */
    private Mapping.Data ensureSubclusterMapping(long offset, long length, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        int n = (int) Math.min(length, clusterSize - inCluster);
        ExtendedSlot slot = extendedSlot(offset);
        long cluster = slot.cluster();
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        boolean compressed = (entry & COMPRESSED) != 0;
        boolean dataFile = header.hasDataFile();
        long host = compressed ? 0 : entry & OFFSET_MASK;
        // an external data file's cluster (at its guest offset, not refcounted) is mapped by COPIED, even at 0
        boolean hasHost = !compressed && (host != 0 || dataFile && (entry & COPIED) != 0);
        if (!compressed && ((bitmap & (bitmap >>> 32) & SUB_ALLOC_ALL) != 0
                || !hasHost && (bitmap & SUB_ALLOC_ALL) != 0)) {
            throw corruptL2(l2Offset, index, entry, "invalid subcluster bitmap 0x" + Long.toHexString(bitmap));
        }
        int firstSc = inCluster >>> unitBits;
        int endSc = ((inCluster + n - 1) >>> unitBits) + 1;
        long touched = subclusterMask(firstSc, endSc);
        long alloc = compressed ? 0 : bitmap & SUB_ALLOC_ALL;
        if (hasHost && !sharedL2 && (entry & COPIED) != 0) {
            guardInPlace(host);
            Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), host + inCluster);
            if ((alloc & touched) == touched) {
                // refcount 1 and allocated: write in place
                inPlace.readLock().lock();
                return d;
            }
            // partial head or tail subclusters that were not allocated are filled around the write
            int from = (alloc & (1L << firstSc)) != 0 ? inCluster : firstSc << unitBits;
            int to = (alloc & (1L << (endSc - 1))) != 0 ? inCluster + n : endSc << unitBits;
            copyAround(host, clusterStart, from, inCluster, inCluster + n, to,
                    subclusterSource(clusterStart, host, bitmap, below));
            pending = new Pending(d, l2Offset, index, entry, -1, 0, 1, new long[] {withAllocated(bitmap, from, to)});
            return d;
        }
        if (!refcounts.canAllocate(l2Offset == 0 || sharedL2 ? 2 : 1)) {
            throw new UnsupportedFeatureException(resource, Feature.LIMITS, "qcow2 refcount table growth",
                    "the image needs a refcount table past QEMU's 8 MiB limit, or host offsets past 2^56");
        }
        if (l2Offset == 0) {
            l2Offset = allocateL2(l1Index);
        } else if (sharedL2) {
            l2Offset = copyL2(l1Index, l2Offset);
        }
        int from;
        int to;
        long base;
        BackingReader source;
        if (compressed) {
            byte[] plain = decompressed(entry, clusterStart);
            source = (dst, at) -> dst.put(plain, (int) (at - clusterStart), dst.remaining());
            from = 0;
            to = clusterSize;
            base = 0;
        } else if (hasHost) {
            // shared with a snapshot: the allocated subclusters move to the new cluster along with the write
            int lowest = alloc == 0 ? firstSc : Math.min(firstSc, Long.numberOfTrailingZeros(alloc));
            int highest = alloc == 0 ? endSc : Math.max(endSc, 64 - Long.numberOfLeadingZeros(alloc));
            from = lowest << unitBits;
            to = highest << unitBits;
            base = bitmap;
            source = subclusterSource(clusterStart, host, bitmap, below);
        } else {
            int run = entry == 0 ? extendedEmptyRun(l2Offset, cluster, inCluster + length) : 1;
            if (dataFile) {
                // the data file holds each cluster at its guest offset
                return allocateSubclusterRun(offset, length, l2Offset, index, cluster, false, run, below);
            }
            long first = run > 1 ? refcounts.allocateDataRun(run) : -1;
            if (first >= 0) {
                return allocateSubclusterRun(offset, length, l2Offset, index, first, true, run, below);
            }
            from = firstSc << unitBits;
            to = endSc << unitBits;
            base = bitmap;
            source = subclusterSource(clusterStart, 0, bitmap, below);
        }
        long c = refcounts.allocate();
        long newHost = c << clusterBits;
        growFile(newHost + clusterSize);
        try {
            copyAround(newHost, clusterStart, from, inCluster, inCluster + n, to, source);
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), newHost + inCluster);
        pending = new Pending(d, l2Offset, index, newHost | COPIED, c, entry, 1,
                new long[] {withAllocated(base, from, to)});
        return d;
    }

    /**
     * How many clusters from guest cluster {@code cluster} on have no host cluster and no allocated subcluster
     * and are touched by a write of {@code span} bytes from the start of the first, within one L2 table (the
     * first is known to qualify); as {@link #emptyRun} for extended L2 entries.
     */
    private int extendedEmptyRun(long l2Offset, long cluster, long span) throws IOException {
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long touched = Qcow2Checks.divCeil(span, clusterSize);
        int limit = (int) Math.min(Math.min(touched, maxRun()), (1L << l2Bits) - index);
        limit = (int) Math.min(limit, Qcow2Checks.divCeil(size, clusterSize) - cluster);
        long[] table = cache.get(l2Offset, this::loadL2);
        int n = 1;
        while (n < limit && table[2 * (index + n)] == 0 && (table[2 * (index + n) + 1] & SUB_ALLOC_ALL) == 0) {
            n++;
        }
        return n;
    }

    /**
     * Uses the {@code count} contiguous host clusters from {@code first} for the write at {@code offset}, whose
     * clusters have no host cluster and no allocated subcluster: only the part of the first subcluster before
     * the write and of the last after it are filled (from below, or zeroes for zero subclusters), and one
     * mapping covers the run, so that the data goes to the host in one write. The written subclusters become
     * allocated on commit. Under allocLock, which stays held until completeWrite.
     */
    private Mapping.Data allocateSubclusterRun(long offset, long length, long l2Offset, int index, long first,
            boolean refcounted, int count, BackingReader below) throws IOException {
        long clusterStart = offset & ~(long) (clusterSize - 1);
        int inCluster = (int) (offset - clusterStart);
        long host = first << clusterBits;
        long runBytes = (long) count << clusterBits;
        long n = Math.min(length, runBytes - inCluster);
        if (refcounted) {
            growFile(host + runBytes);
        }
        long[] table = cache.get(l2Offset, this::loadL2);
        long lastStart = runBytes - clusterSize;
        int sub = 1 << unitBits;
        int headFrom = inCluster & -sub;
        int lastEnd = (int) (inCluster + n - lastStart);
        int tailTo = Math.min(clusterSize, (lastEnd + sub - 1) & -sub);
        try {
            if (headFrom < inCluster) {
                copyPart(host, clusterStart, headFrom, inCluster,
                        subclusterSource(clusterStart, 0, table[2 * index + 1], below));
            }
            if (lastEnd < tailTo) {
                copyPart(host + lastStart, clusterStart + lastStart, lastEnd, tailTo,
                        subclusterSource(clusterStart + lastStart, 0, table[2 * (index + count - 1) + 1], below));
            }
        } catch (IOException | RuntimeException e) {
            for (int k = 0; refcounted && k < count; k++) {
                refcounts.free(first + k);
            }
            throw e;
        }
        long[] bitmaps = new long[count];
        for (int k = 0; k < count; k++) {
            int from = k == 0 ? headFrom : 0;
            int to = k == count - 1 ? tailTo : clusterSize;
            bitmaps[k] = withAllocated(table[2 * (index + k) + 1], from, to);
        }
        Mapping.Data d = new Mapping.Data(offset, n, dataStorage(), host + inCluster);
        pending = new Pending(d, l2Offset, index, host | COPIED, refcounted ? first : -1, 0, count, bitmaps);
        return d;
    }

    /** Fills bytes {@code [from, writeFrom)} and {@code [writeTo, to)} of the cluster at {@code host}. */
    private void copyAround(long host, long clusterStart, int from, int writeFrom, int writeTo, int to,
            BackingReader source) throws IOException {
        if (from < writeFrom) {
            copyPart(host, clusterStart, from, writeFrom, source);
        }
        if (writeTo < to) {
            copyPart(host, clusterStart, writeTo, to, source);
        }
    }

    /**
     * Reads the guest bytes of a cluster as its subclusters say: allocated ones from {@code host}, zero ones
     * as zeroes, the others from {@code below}.
     */
    private BackingReader subclusterSource(long clusterStart, long host, long bitmap, BackingReader below) {
        if (below == BackingReader.ZEROES && (bitmap & SUB_ALLOC_ALL) == 0) {
            // nothing allocated and nothing below: every subcluster reads as zero
            return BackingReader.ZEROES;
        }
        return (dst, at) -> {
            long pos = at;
            while (dst.hasRemaining()) {
                int inCluster = (int) (pos - clusterStart);
                int sc = inCluster >>> unitBits;
                int n = Math.min(dst.remaining(), ((sc + 1) << unitBits) - inCluster);
                ByteBuffer part = dst.slice(dst.position(), n);
                if ((bitmap & (1L << sc)) != 0) {
                    dataStorage().read(part, host + inCluster);
                } else if ((bitmap & (1L << (32 + sc))) != 0) {
                    BackingReader.ZEROES.read(part, pos);
                } else {
                    below.read(part, pos);
                }
                dst.position(dst.position() + n);
                pos += n;
            }
        };
    }

    /**
     * {@link #zeroClusters} for images with extended L2 entries: zero writes work on whole subclusters (part of
     * one is {@link #zeroPartialUnit}'s), a discard on whole clusters only (as QEMU's discard granularity is the
     * cluster). Returns how many bytes from {@code offset} it handled: 0 when {@code offset} is not aligned, and it
     * stops before a part it cannot handle (no room for an L2 table). As in QEMU, whose request fails as a whole
     * then, a zero write whose partial first or last cluster is compressed (its subclusters cannot be marked
     * zero) writes explicit zeroes over all of it, copying on write from {@code below}; without {@code fallback}
     * it stops before that cluster instead.
     */
    private long zeroSubclusters(long offset, long length, boolean unmap, boolean discard, boolean full,
            boolean fallback, BackingReader below) throws IOException {
        long grain = discard ? clusterSize : 1L << unitBits;
        if (offset >= size || (offset & (grain - 1)) != 0) {
            return 0;
        }
        long requestEnd = Math.min(offset + length, size);
        // a request that reaches the end of the image covers the partial last unit
        long end = requestEnd == size ? Qcow2Checks.divCeil(size, grain) * grain : requestEnd & -grain;
        long pos = offset;
        boolean explicit = false;
        allocLock.lock();
        try {
            long compressed = discard || full ? -1 : compressedPartialCluster(offset, end);
            if (compressed >= 0 && fallback) {
                explicit = true;
                end = offset;
            } else if (compressed >= 0) {
                // QEMU zeroes up to the compressed cluster and then fails (the caller reports it, asked again)
                end = compressed;
            }
            while (pos < end) {
                awaitClusters(pos >>> clusterBits, pos >>> clusterBits);
                long clusterEnd = (pos & -(long) clusterSize) + clusterSize;
                long pieceEnd = Math.min(end, clusterEnd);
                boolean whole = (pos & (clusterSize - 1)) == 0 && (pieceEnd == clusterEnd || pieceEnd >= size);
                boolean done = whole ? zeroExtendedCluster(pos, unmap, discard, full)
                        : !discard && zeroSubclusterRange(pos, pieceEnd);
                if (!done) {
                    break;
                }
                pos = pieceEnd;
            }
        } finally {
            allocLock.unlock();
        }
        if (explicit) {
            pos = requestEnd;
            writeExplicitZeroes(offset, pos, below);
        }
        return Math.min(pos, requestEnd) - offset;
    }

    /**
     * Where the zero write {@code [from, to)} (subcluster aligned) covers part of a compressed cluster, whose
     * subclusters cannot be marked zero: {@code from} when it starts inside one, the start of the last cluster
     * when it ends inside one (QEMU's qcow2_subcluster_zeroize: the head before the first whole cluster, the tail
     * after the last, none at the end of the image), -1 otherwise. Under allocLock.
     */
    private long compressedPartialCluster(long from, long to) throws IOException {
        long cs = clusterSize;
        long headEnd = Math.min(to, (from + cs - 1) & -cs);
        if (headEnd > from && unit(from).kind() == Kind.COMPRESSED) {
            return from;
        }
        long tailStart = Math.max(headEnd, to & -cs);
        return to < size && tailStart < to && unit(tailStart).kind() == Kind.COMPRESSED ? tailStart : -1;
    }

    /**
     * Zeroes, discards or ({@code full}) empties one whole cluster with an extended L2 entry, as QEMU 7.2 does
     * (zero_in_l2_slice, discard_in_l2_slice): a zero write marks every subcluster zero and keeps the host
     * cluster (even one shared with a snapshot, which a later write copies) unless {@code unmap} or it is
     * compressed; a discard lets go of the host cluster and marks the subclusters zero (left alone when nothing
     * is allocated and there is no backing file); a full discard leaves the entry empty. As in QEMU, the L2
     * table is allocated, or copied from a snapshot, even when the entry stays as it is (except for a full
     * discard). The entry changes before the refcount of a cluster it let go drops (on the next flush); an
     * external data file's cluster is zeroed (raw) or discarded instead. False when there is no room for an L2
     * table. Under allocLock.
     */
    private boolean zeroExtendedCluster(long pos, boolean unmap, boolean discard, boolean full) throws IOException {
        boolean backing = !full && hasBackingFile();
        ExtendedSlot slot = extendedSlot(pos);
        long cluster = slot.cluster();
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        boolean compressed = (entry & COMPRESSED) != 0;
        boolean dataFile = header.hasDataFile();
        boolean allocated = compressed || (entry & OFFSET_MASK) != 0 || dataFile && (entry & COPIED) != 0;
        long newEntry;
        long newBitmap;
        if (full) {
            newEntry = 0;
            newBitmap = 0;
        } else if (discard) {
            // an unallocated cluster without a backing file reads as zero already
            boolean change = allocated || backing;
            newEntry = change ? 0 : entry;
            newBitmap = change ? SUB_ZERO_ALL : bitmap;
        } else {
            boolean keep = allocated && !compressed && !unmap;
            newEntry = keep ? entry : 0;
            newBitmap = SUB_ZERO_ALL;
        }
        boolean changed = newEntry != entry || newBitmap != bitmap;
        if (!changed && (full || l2Offset != 0 && !sharedL2)) {
            return true;
        }
        if (l2Offset == 0 || sharedL2) {
            if (!refcounts.canAllocate(1)) {
                return false;
            }
            l2Offset = l2Offset == 0 ? allocateL2(l1Index) : copyL2(l1Index, l2Offset);
        }
        if (!changed) {
            return true;
        }
        setExtendedL2Entry(l2Offset, index, newEntry, newBitmap);
        if (dataFile) {
            // not refcounted: a raw data file is zeroed, otherwise the space is given back
            if (allocated) {
                clearDataFile(cluster << clusterBits);
            }
        } else if (newEntry != entry) {
            dropReference(entry);
        }
        return true;
    }

    /**
     * Marks the subclusters of {@code [pos, end)} (subcluster aligned, within one cluster) zero, keeping the
     * cluster's host offset, as QEMU's zero_l2_subclusters (which also takes the L2 table, allocated or copied
     * from a snapshot, first); false when there is no room for an L2 table, or the cluster is compressed (QEMU
     * cannot mark part of one zero: the caller writes zeroes). Under allocLock.
     */
    private boolean zeroSubclusterRange(long pos, long end) throws IOException {
        ExtendedSlot slot = extendedSlot(pos);
        long clusterStart = slot.cluster() << clusterBits;
        int l1Index = slot.l1Index();
        int index = slot.index();
        long l2Offset = slot.l2Offset();
        boolean sharedL2 = slot.sharedL2();
        long entry = slot.entry();
        long bitmap = slot.bitmap();
        if ((entry & COMPRESSED) != 0) {
            return false;
        }
        int sub = 1 << unitBits;
        long mask = subclusterMask((int) (pos - clusterStart) >>> unitBits,
                (int) ((end - clusterStart + sub - 1) >>> unitBits));
        long newBitmap = (bitmap & ~mask) | (mask << 32);
        if (newBitmap == bitmap && l2Offset != 0 && !sharedL2) {
            return true;
        }
        if (l2Offset == 0 || sharedL2) {
            if (!refcounts.canAllocate(1)) {
                return false;
            }
            l2Offset = l2Offset == 0 ? allocateL2(l1Index) : copyL2(l1Index, l2Offset);
        }
        if (newBitmap == bitmap) {
            return true;
        }
        setExtendedL2Entry(l2Offset, index, entry, newBitmap);
        if (header.hasDataFile() && header.dataFileRaw() && (entry & COPIED) != 0) {
            // a raw data file shows the guest's bytes
            long from = pos;
            long to = Math.min(end, size);
            dataStorage().writeZeroes((entry & OFFSET_MASK) + (from - clusterStart), to - from, true);
        }
        return true;
    }

    /**
     * Writes explicit zeroes over {@code [from, to)} through the ordinary write path (allocating, copying on
     * write from {@code below}), as QEMU's block layer does where a zero write cannot be done with metadata.
     * Not under allocLock.
     */
    private void writeExplicitZeroes(long from, long to, BackingReader below) throws IOException {
        ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(to - from, 1 << 20));
        for (long pos = from; pos < to; ) {
            long want = Math.min(zeroes.capacity(), to - pos);
            try (WriteTicket t = beginWrite(pos, want, below)) {
                int n = (int) Math.min(t.mapping().length(), want);
                t.write(zeroes.clear().limit(n));
                t.commit();
                pos += n;
            }
        }
    }

    /**
     * Changes extended L2 entry {@code index} (table words 2·index and 2·index + 1) in memory, as
     * {@link #setL2Entry}. The words are stored in the order that shows a lock-free reader in between either
     * the old contents or reads the new ones allow: the entry first when it gains a host cluster (its new
     * allocated bits need it), the bitmap first otherwise (allocated bits must be gone before the host is,
     * and a compressed entry ignores its bitmap). Under allocLock.
     */
    private void setExtendedL2Entry(long l2Offset, int index, long entry, long bitmap) throws IOException {
        long[] table = cache.get(l2Offset, this::loadL2);
        // (a data file cluster is mapped by COPIED, even at host offset 0)
        boolean mapped = (entry & OFFSET_MASK) != 0 || header.hasDataFile() && (entry & COPIED) != 0;
        boolean entryFirst = (table[2 * index] & COMPRESSED) == 0 && mapped;
        if (entryFirst) {
            WORDS.setRelease(table, 2 * index, entry);
            WORDS.setRelease(table, 2 * index + 1, bitmap);
        } else {
            WORDS.setRelease(table, 2 * index + 1, bitmap);
            WORDS.setRelease(table, 2 * index, entry);
        }
        dirtyL2.put(l2Offset, table);
        if (dirtyL2.size() > maxDirtyL2) {
            writeBack();
        }
    }

    /** With extended L2 entries, zero writes work on whole subclusters. */
    @Override
    public OptionalInt zeroAlignment() {
        return OptionalInt.of(extendedL2 ? 1 << unitBits : clusterSize);
    }

    /** Changes one L2 entry in memory; the table is written by {@link #writeBack}. Under allocLock. */
    private void setL2Entry(long l2Offset, int index, long entry) throws IOException {
        long[] table = cache.get(l2Offset, this::loadL2);
        table[index] = entry;
        dirtyL2.put(l2Offset, table);
        if (dirtyL2.size() > maxDirtyL2) {
            writeBack();
        }
    }

    /**
     * Writes the cached metadata in dependency order: refcount blocks, then (after a sync that also
     * covers the data written into new clusters) the dirty L2 tables, then (after another sync) the L1
     * entries of new L2 tables. With lazy refcounts (as QEMU's qcow2_alloc_cluster_link_l2 and
     * qcow2_write_caches), the image is marked dirty (synced) before its first L2 update instead, the
     * refcount blocks wait in memory (until evicted, or {@link #close}), and the first sync is left out
     * unless copy-on-write filled new clusters (QEMU's perform_cow makes the L2 cache depend on a flush) or
     * the file grew (then grown further ahead, so that the next ones need none). Under allocLock.
     */
    private void writeBack() throws IOException {
        // (with no refcount change waiting, as after zero writes and discards only, there is nothing to be lazy
        // about: QEMU marks the image dirty on allocating writes only)
        if (lazyRefcounts() && (refcountsStale() || refcounts.hasDirty())) {
            if (dirtyL2.isEmpty() && dirtyL1.isEmpty()) {
                return;
            }
            markDirty();
        } else {
            refcounts.writeDirty();
            if (dirtyL2.isEmpty() && dirtyL1.isEmpty()) {
                return;
            }
        }
        long length = storage.size();
        if (!refcountsStale() || copiedSinceSync || length > syncedLength) {
            if (refcountsStale() && length > syncedLength) {
                // the file's growth must be durable before entries point into it: grow it ahead (sparse), so
                // that this sync covers the next write-backs' growth too and they need none (as QEMU's lazy
                // mode needs none); a clean close cuts what is left unused
                long ahead = Math.min(Math.max(length >>> 3, 8L << 20), 256L << 20);
                length = (length + ahead + clusterSize - 1) & -(long) clusterSize;
                storage.resize(length, Preallocation.OFF);
                grownAhead = true;
            }
            syncMetadata();
        }
        copiedSinceSync = false;
        syncedLength = length;
        ByteBuffer b = ByteBuffer.allocate(clusterSize).order(ByteOrder.BIG_ENDIAN);
        for (var it = dirtyL2.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            b.clear().asLongBuffer().put(e.getValue());
            storage.write(b, e.getKey());
            it.remove();
        }
        if (!dirtyL1.isEmpty()) {
            // new L2 tables (and their entries) are on stable media before an L1 entry points at them
            syncMetadata();
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
            for (int i = dirtyL1.nextSetBit(0); i >= 0; i = dirtyL1.nextSetBit(i + 1)) {
                storage.write(e.clear().putLong(0, l1[i]), l1Offset + i * 8L);
            }
            dirtyL1.clear();
        }
    }

    @Override
    public void flush() throws IOException {
        if (refcounts != null) {
            allocLock.lock();
            try {
                writeBack();
                pendingDecrefs.addAll(refcounts.takeRetired());
                if (!pendingDecrefs.isEmpty()) {
                    inPlace.writeLock().lock();
                    try {
                        // the L2 updates that dropped these references reach stable media before the refcounts drop
                        syncMetadata();
                        while (!pendingDecrefs.isEmpty()) {
                            long c = pendingDecrefs.getLast();
                            long left = refcounts.decrement(c);
                            pendingDecrefs.removeLast();
                            if (left == 0) {
                                // nothing can reallocate the cluster before the allocation lock is released
                                storage.discard(c << clusterBits, clusterSize);
                                cache.invalidate(c << clusterBits);
                            }
                        }
                    } finally {
                        inPlace.writeLock().unlock();
                    }
                }
                if (!refcountsStale()) {
                    refcounts.writeDirty();
                }
            } finally {
                allocLock.unlock();
            }
            storage.flush();
        }
    }

    @Override
    public void sync() throws IOException {
        if (refcounts != null) {
            storage.sync();
        }
    }

    @Override
    public List<Dependency> dependencies() {
        List<Dependency> out = new ArrayList<>(2);
        header.backingFile().filter(n -> !n.isEmpty())
                .ifPresent(n -> out.add(new Dependency.BackingFile(n, header.backingFormat().filter(f -> !f.isEmpty()))));
        if (header.hasDataFile()) {
            out.add(new Dependency.DataFile(header.dataFile().orElseThrow()));
        }
        return List.copyOf(out);
    }

    @Override
    public void attach(Dependency dependency, Storage data) throws IOException {
        Objects.requireNonNull(data, "data");
        if (!(dependency instanceof Dependency.DataFile) || !header.hasDataFile()) {
            throw new UnsupportedOperationException(resource + ": this image names no data file");
        }
        this.dataFileSize = data.size();
        this.dataFile = data;
    }

    @Override
    public OptionalInt clusterSize() {
        return OptionalInt.of(clusterSize);
    }

    /**
     * {@inheritDoc} As QEMU (qcow2_detect_metadata_preallocation): when clearly more clusters have a
     * refcount than the file really occupies on disk, the metadata was preallocated, and data clusters
     * may be holes that read as zero. Decided once, on first use; when the storage cannot tell its
     * allocated size, or the refcounts cannot be read, the answer is no.
     */
    @Override
    public boolean mapsStorageHoles() {
        Boolean known = metadataPreallocated;
        if (known == null) {
            boolean guess;
            try {
                guess = detectMetadataPreallocation();
            } catch (IOException e) {
                guess = false;
            }
            metadataPreallocated = known = guess;
        }
        return known;
    }

    private boolean detectMetadataPreallocation() throws IOException {
        var allocated = storage.allocatedSize();
        if (allocated.isEmpty()) {
            return false;
        }
        long realClusters = allocated.getAsLong() / clusterSize;
        long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
        long endCluster = Qcow2Checks.divCeil(fileSize, clusterSize);
        int order = header.refcountOrder();
        int blockBits = clusterBits + 3 - order;
        long tableEntries = (long) header.refcountTableClusters() * clusterSize / 8;
        long count = 0;
        long loadedBlock = -1;
        byte[] block = new byte[clusterSize];
        ByteBuffer entry = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
        for (long i = 0; i < endCluster && count < threshold; i++) {
            long tableIndex = i >>> blockBits;
            if (tableIndex >= tableEntries) {
                break;
            }
            if (tableIndex != loadedBlock) {
                storage.read(entry.clear(), header.refcountTableOffset() + tableIndex * 8);
                long blockOffset = entry.getLong(0) & ~511L;
                if (blockOffset == 0) {
                    // a whole refblock's worth of clusters with refcount 0
                    i = ((tableIndex + 1) << blockBits) - 1;
                    continue;
                }
                if ((blockOffset & (clusterSize - 1)) != 0 || blockOffset < 0 || blockOffset >= fileSize) {
                    return false;
                }
                storage.read(ByteBuffer.wrap(block), blockOffset);
                loadedBlock = tableIndex;
            }
            int index = (int) (i & ((1L << blockBits) - 1));
            if (refcountNonZero(block, index, order)) {
                count++;
            }
        }
        return count >= threshold;
    }

    /** Whether entry {@code index} of a refblock with {@code 1 << order}-bit entries is non-zero. */
    private static boolean refcountNonZero(byte[] block, int index, int order) {
        if (order < 3) {
            // sub-byte widths are packed from the low bit of each byte
            int bits = 1 << order;
            int perByte = 8 / bits;
            int shift = (index % perByte) * bits;
            return ((block[index / perByte] >>> shift) & ((1 << bits) - 1)) != 0;
        }
        int bytes = 1 << (order - 3);
        for (int k = 0; k < bytes; k++) {
            if (block[index * bytes + k] != 0) {
                return true;
            }
        }
        return false;
    }

    @Override
    public boolean dirty() {
        return header.dirty();
    }

    @Override
    public Map<String, Object> formatSpecific() {
        Map<String, Object> m = new LinkedHashMap<>();
        boolean v3 = header.version() >= 3;
        m.put("compat", v3 ? "1.1" : "0.10");
        m.put("compression-type", header.compressionType() == 1 ? "zstd" : "zlib");
        if (v3) {
            m.put("lazy-refcounts", header.lazyRefcounts());
        }
        List<Qcow2Bitmaps.Bitmap> listed = tracker != null ? tracker.current() : bitmaps;
        if (!listed.isEmpty()) {
            m.put("bitmaps", listed.stream().map(Qcow2Bitmaps.Bitmap::info).toList());
        }
        m.put("refcount-bits", 1 << header.refcountOrder());
        if (header.hasDataFile()) {
            header.dataFile().ifPresent(d -> m.put("data-file", d));
            m.put("data-file-raw", header.dataFileRaw());
        }
        if (v3) {
            m.put("corrupt", header.corrupt());
            m.put("extended-l2", header.extendedL2());
        }
        return m;
    }

    // ------------------------------------------------------------------ internal snapshots

    /**
     * Creates an internal snapshot ({@link InternalSnapshots#create}) as QEMU's qcow2_snapshot_create: the active L1 table is copied to new clusters, every path
     * from it (each L2 table and each cluster its entries reach) gains a reference, the COPIED flags of the active
     * tables are cleared (everything is shared now) and a new snapshot table with the entry appended replaces the
     * old one. The id is the largest numeric id plus one; date now, VM clock and VM state 0, the extra data holds
     * the disk size. Everything is written and synced before the header points at the new table; the old table
     * is freed afterwards. Refused before anything changes when a refcount would overflow (1-bit refcounts).
     */
    SnapshotInfo createSnapshot(String name) throws IOException {
        Objects.requireNonNull(name, "name");
        requireWritable(-1);
        if (header.hasDataFile()) {
            // QEMU refuses too: the data file's clusters are not refcounted, so they cannot be shared
            throw new UnsupportedFeatureException(resource, Feature.EXTERNAL_DATA_FILE, "qcow2 snapshots with an external data file",
                    "internal snapshots of images with an external data file are not supported");
        }
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length > 0xFFFF) {
            throw new IllegalArgumentException(resource + ": a snapshot name is at most 65535 bytes long (UTF-8), got "
                    + nameBytes.length);
        }
        return exclusively(() -> create(nameBytes));
    }

    /** An action on many tables at once. */
    @FunctionalInterface
    private interface TableAction<T> {
        T run() throws IOException;
    }

    /**
     * Runs {@code action} with every other writer excluded: the allocation lock, no write in flight, pending
     * metadata flushed, and no in-place write (the snapshot operations change many tables at once).
     */
    private <T> T exclusively(TableAction<T> action) throws IOException {
        allocLock.lock();
        try {
            awaitQuiet();
            flush();
            inPlace.writeLock().lock();
            try {
                return action.run();
            } finally {
                inPlace.writeLock().unlock();
            }
        } finally {
            allocLock.unlock();
        }
    }

    private SnapshotInfo create(byte[] name) throws IOException {
        List<Qcow2Snapshot> list = snapshots;
        if (list.size() >= Qcow2Header.MAX_SNAPSHOTS) {
            throw new ImageLimitException(resource, 60, "the image has the maximum of " + Qcow2Header.MAX_SNAPSHOTS
                    + " snapshots");
        }
        long[] active = l1;
        Refs refs = i -> subtree(active, i, true);
        checkEach(active.length, refs, 1);
        List<byte[]> entries = rawEntries(list);
        long[] oldTable = tableClusters(snapshotsOffset, paddedLength(entries));
        refcounts.checkAdjust(oldTable, -1);
        Instant now = Instant.now();
        int l1Clusters = clustersFor(active.length * 8L);
        long l1Off = 0;
        if (l1Clusters > 0) {
            // qemu-img check counts l1_size * 8 bytes from the offset: an empty L1 table has offset 0 and no cluster
            l1Off = refcounts.allocateRun(l1Clusters) << clusterBits;
            ByteBuffer t = ByteBuffer.allocate(l1Clusters * clusterSize).order(ByteOrder.BIG_ENDIAN);
            for (long e : active) {
                t.putLong(e & ~COPIED);
            }
            storage.write(t.clear(), l1Off);
            growFile(l1Off + (long) l1Clusters * clusterSize);
        }
        entries.add(snapshotEntry(l1Off, active.length, nextSnapshotId(list), name, now, size));
        long newTable;
        try {
            newTable = allocateTable(entries);
        } catch (IOException | RuntimeException e) {
            // nothing points at the new L1 copy yet: give its clusters back
            freeClusters(refcounts.adjust(tableClusters(l1Off, active.length * 8L), -1));
            throw e;
        }
        // each path from the active L1 gains the snapshot's reference; nothing the active image reaches is its own
        // alone any more, so no COPIED flag stays (as qemu's qcow2_update_snapshot_refcount with addend 1)
        try {
            adjustEach(active.length, refs, 1);
        } catch (IOException | RuntimeException e) {
            freeClusters(refcounts.adjust(tableClusters(l1Off, active.length * 8L), -1));
            freeClusters(refcounts.adjust(tableClusters(newTable, paddedLength(entries)), -1));
            throw e;
        }
        clearCopied();
        switchSnapshotTable(entries, newTable);
        freeClusters(refcounts.adjust(oldTable, -1));
        return snapshots.getLast().info();
    }

    /**
     * Deletes an internal snapshot ({@link InternalSnapshots#delete}) as QEMU's qcow2_snapshot_delete: the new snapshot table without the entry is written and the
     * header switched to it (synced), then the snapshot's L1 table, every path from it and the old table lose their
     * reference; freed clusters are discarded. COPIED flags of the active tables are set again where a refcount
     * returned to 1.
     */
    void deleteSnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        requireWritable(-1);
        exclusively(() -> {
            delete(idOrName);
            return null;
        });
    }

    private void delete(String idOrName) throws IOException {
        List<Qcow2Snapshot> list = snapshots;
        int index = findSnapshot(list, idOrName);
        Qcow2Snapshot sn = list.get(index);
        long[] snL1 = readTable(storage, sn.l1TableOffset(), sn.l1Size());
        Refs refs = i -> subtree(snL1, i, false);
        checkEach(snL1.length, refs, -1);
        List<byte[]> entries = rawEntries(list);
        long[] tables = java.util.stream.LongStream.concat(
                java.util.Arrays.stream(tableClusters(sn.l1TableOffset(), sn.l1Size() * 8L)),
                java.util.Arrays.stream(tableClusters(snapshotsOffset, paddedLength(entries)))).sorted().toArray();
        refcounts.checkAdjust(tables, -1);
        entries.remove(index);
        long newTable = allocateTable(entries);
        switchSnapshotTable(entries, newTable);
        freeClusters(adjustEach(snL1.length, refs, -1));
        freeClusters(refcounts.adjust(tables, -1));
        recomputeCopied();
        syncAll();
    }

    /**
     * Reverts to an internal snapshot ({@link InternalSnapshots#apply}) as QEMU's qcow2_snapshot_goto: every path from the snapshot's L1 table gains a reference (only
     * those the active L1 table does not hold already: unlike qemu, a refcount at its maximum does not make this
     * fail), the active L1 table (in place, or moved to new clusters when it is too small) becomes a copy of the snapshot's,
     * synced, and the header takes the snapshot's disk size; then every path from the old active L1 table loses its
     * reference and the COPIED flags are recomputed. The snapshot stays.
     */
    void applySnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        requireWritable(-1);
        exclusively(() -> {
            apply(idOrName);
            return null;
        });
    }

    private void apply(String idOrName) throws IOException {
        if (!bitmaps.isEmpty()) {
            // QEMU's bdrv_snapshot_goto refuses too: the bitmaps cannot describe a change of the whole disk
            throw new UnsupportedFeatureException(resource, Feature.PERSISTENT_BITMAPS, "qcow2 snapshot apply with bitmaps",
                    "Device has active dirty bitmaps");
        }
        List<Qcow2Snapshot> list = snapshots;
        Qcow2Snapshot sn = list.get(findSnapshot(list, idOrName));
        long newSize = sn.diskSize() >= 0 ? sn.diskSize() : size;
        long[] snL1 = readTable(storage, sn.l1TableOffset(), sn.l1Size());
        long[] old = l1;
        long oldOffset = l1Offset;
        // a reference both L1 tables hold is held all along: only the differences change (so that a cluster whose
        // refcount is at the maximum already does not have to go past it for a moment); the same L2 table under
        // an index holds the same references
        int span = Math.max(snL1.length, old.length);
        Refs gains = i -> sameTable(snL1, old, i) ? NONE
                : difference(subtree(snL1, i, false), subtree(old, i, true))[0];
        Refs losses = i -> sameTable(snL1, old, i) ? NONE
                : difference(subtree(snL1, i, false), subtree(old, i, true))[1];
        checkEach(span, gains, 1);
        long needed = Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
        long entries = Math.max(Math.max(old.length, snL1.length), needed);
        if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ImageLimitException(resource, 36, "the snapshot needs an L1 table of " + entries
                    + " entries: Active L1 table too large");
        }
        int oldClusters = clustersFor(old.length * 8L);
        int clusters = clustersFor(entries * 8);
        boolean move = clusters > oldClusters;
        long newOffset = move ? refcounts.allocateRun(clusters) << clusterBits : oldOffset;
        long[] next = new long[(int) entries];
        for (int i = 0; i < snL1.length; i++) {
            next[i] = snL1[i] & ~COPIED;
        }
        try {
            adjustEach(span, gains, 1);
        } catch (IOException | RuntimeException e) {
            if (move) {
                freeClusters(refcounts.adjust(tableClusters(newOffset, (long) clusters * clusterSize), -1));
            }
            throw e;
        }
        // the references (and a moved table's own refcounts, cached write-back) must be on stable media before the
        // L1 table (which points when written in place) changes
        refcounts.writeDirty();
        syncAll();
        ByteBuffer t = ByteBuffer.allocate(move ? clusters * clusterSize : next.length * 8).order(ByteOrder.BIG_ENDIAN);
        t.asLongBuffer().put(next);
        storage.write(t, newOffset);
        growFile(newOffset + t.capacity());
        // the new L1 table is on stable media before the header names it or its size
        syncAll();
        if (move || newSize != size || next.length != old.length) {
            ByteBuffer h = ByteBuffer.allocate(24).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize)
                    .putInt(8, header.cryptMethod()).putInt(12, next.length).putLong(16, newOffset);
            storage.write(h, 24);
            syncAll();
        }
        l1 = next;
        l1Offset = newOffset;
        size = newSize;
        lastDecompressed.set(null);
        freeClusters(adjustEach(span, losses, -1));
        if (move) {
            freeClusters(refcounts.adjust(tableClusters(oldOffset, old.length * 8L), -1));
        }
        recomputeCopied();
        syncAll();
    }

    /** {@code {a - b, b - a}} of two sorted multisets. */
    static long[][] difference(long[] a, long[] b) {
        java.util.stream.LongStream.Builder onlyA = java.util.stream.LongStream.builder();
        java.util.stream.LongStream.Builder onlyB = java.util.stream.LongStream.builder();
        int i = 0;
        int j = 0;
        while (i < a.length || j < b.length) {
            if (j == b.length || i < a.length && a[i] < b[j]) {
                onlyA.add(a[i++]);
            } else if (i == a.length || b[j] < a[i]) {
                onlyB.add(b[j++]);
            } else {
                i++;
                j++;
            }
        }
        return new long[][] {onlyA.build().toArray(), onlyB.build().toArray()};
    }

    /** Refuses a change to an image opened read-only; {@code offset} is the guest offset concerned, or -1. */
    private void requireWritable(long offset) throws ImageException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
        }
        if (corrupted != null) {
            throw new CorruptImageException(resource, offset, "the image was marked corrupt (" + corrupted
                    + "); no more writes");
        }
    }

    /**
     * QEMU's metadata overlap check (qcow2_pre_write_overlap_check, its default "cached" checks) before
     * guest data goes in place into host cluster {@code host} of an L2 entry: the cluster must be counted
     * and must not hold metadata. On a damaged image that points guest data at metadata the image is
     * marked corrupt, as QEMU marks it, and the write fails without writing anything.
     */
    private void guardInPlace(long host) throws IOException {
        if (header.hasDataFile()) {
            // guest data lives in the data file, metadata in this one
            return;
        }
        String what = metadataAt(host);
        if (what == null && refcounts.get(host >>> clusterBits) == 0) {
            what = "a cluster whose refcount is 0";
        }
        if (what != null) {
            String message = "Preventing invalid write on metadata (overlaps with " + what + ")";
            if (header.version() >= 3) {
                ByteBuffer f = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
                storage.read(f, 72);
                long features = f.getLong(0) | Qcow2Header.INCOMPAT_CORRUPT;
                storage.write(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, features), 72);
                storage.flush();
                storage.sync();
                // later header writes (a lazy image marked clean on close) keep the bit
                header = header.withIncompatibleFeatures(features);
            }
            corrupted = message;
            throw new CorruptImageException(resource, host, "Marking image as corrupt: " + message
                    + "; further corruption events will be suppressed");
        }
    }

    /** The kind of metadata in the host cluster at {@code host}, in QEMU's words; null for none. */
    private String metadataAt(long host) throws IOException {
        long c = host >>> clusterBits;
        if (c == 0) {
            return "qcow2_header";
        }
        if (inTable(c, l1Offset, l1.length * 8L)) {
            return "active L1 table";
        }
        if (inTable(c, refcounts.tableOffset(), refcounts.tableBytes())) {
            return "refcount table";
        }
        if (refcounts.isBlock(c << clusterBits)) {
            return "refcount block";
        }
        List<Qcow2Snapshot> list = snapshots;
        if (!list.isEmpty()) {
            if (inTable(c, snapshotsOffset, snapshotTableBytes(list))) {
                return "snapshot table";
            }
            for (Qcow2Snapshot sn : list) {
                if (inTable(c, sn.l1TableOffset(), sn.l1Size() * 8L)) {
                    return "inactive L1 table";
                }
            }
        }
        long at = c << clusterBits;
        for (long e : l1) {
            if ((e & OFFSET_MASK) == at) {
                return "active L2 table";
            }
        }
        if (tracker != null && tracker.inDirectory(c, clusterBits)) {
            return "bitmap directory";
        }
        return null;
    }

    /** The bytes of the snapshot table {@code list} was read from (its entries are contiguous), cached. */
    private long snapshotTableBytes(List<Qcow2Snapshot> list) throws IOException {
        SnapshotTableExtent known = snapshotTableExtent;
        if (known != null && known.list() == list) {
            return known.bytes();
        }
        Qcow2Snapshot last = list.getLast();
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        storage.read(fixed, last.entryOffset());
        long bytes = last.entryOffset() + Qcow2Snapshot.entryLength(fixed) - list.getFirst().entryOffset();
        snapshotTableExtent = new SnapshotTableExtent(list, bytes);
        return bytes;
    }

    private record SnapshotTableExtent(List<Qcow2Snapshot> list, long bytes) {
    }

    private volatile SnapshotTableExtent snapshotTableExtent;

    /** Whether host cluster {@code c} holds part of the table of {@code bytes} bytes at {@code offset}. */
    private boolean inTable(long c, long offset, long bytes) {
        return offset != 0 && bytes > 0 && c >= offset >>> clusterBits && c <= (offset + bytes - 1) >>> clusterBits;
    }

    /** The snapshot with id {@code idOrName}, else the first one with that name (QEMU's find_snapshot_by_id_or_name). */
    private int findSnapshot(List<Qcow2Snapshot> list, String idOrName) throws NoSuchSnapshotException {
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i).id().equals(idOrName)) {
                return i;
            }
        }
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i).name().equals(idOrName)) {
                return i;
            }
        }
        throw new NoSuchSnapshotException(resource, idOrName);
    }

    /** QEMU's find_new_snapshot_id: one more than the largest id read as a number (strtoul; not a number is 0). */
    static String nextSnapshotId(List<Qcow2Snapshot> list) {
        long max = 0;
        for (Qcow2Snapshot s : list) {
            long v = strtoul(s.id());
            if (Long.compareUnsigned(v, max) > 0) {
                max = v;
            }
        }
        return Long.toUnsignedString(max + 1);
    }

    /** C's strtoul(s, NULL, 10): leading blanks, an optional sign, digits; saturates; no digits is 0. */
    static long strtoul(String s) {
        int i = 0;
        while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) >= '\t' && s.charAt(i) <= '\r')) {
            i++;
        }
        boolean negative = false;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        long v = 0;
        boolean overflow = false;
        for (; i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9'; i++) {
            int d = s.charAt(i) - '0';
            if (Long.compareUnsigned(v, Long.divideUnsigned(-1L - d, 10)) > 0) {
                overflow = true;
            }
            v = v * 10 + d;
        }
        if (overflow) {
            return -1L;
        }
        return negative ? -v : v;
    }

    /** One snapshot table entry as QEMU 7.2 writes them: 24 bytes of extra data (VM state 0, disk size, icount 0). */
    private static byte[] snapshotEntry(long l1Off, int l1Size, String id, byte[] name, Instant date, long diskSize) {
        byte[] idBytes = id.getBytes(StandardCharsets.UTF_8);
        int extra = 24;
        ByteBuffer b = ByteBuffer.allocate(Qcow2Snapshot.FIXED + extra + idBytes.length + name.length)
                .order(ByteOrder.BIG_ENDIAN);
        b.putLong(0, l1Off).putInt(8, l1Size).putShort(12, (short) idBytes.length).putShort(14, (short) name.length)
                // qemu-img takes the time in microseconds (g_get_real_time)
                .putInt(16, (int) date.getEpochSecond()).putInt(20, date.getNano() / 1000 * 1000)
                .putLong(24, 0).putInt(32, 0).putInt(36, extra)
                .putLong(40, 0).putLong(48, diskSize).putLong(56, 0)
                .put(Qcow2Snapshot.FIXED + extra, idBytes).put(Qcow2Snapshot.FIXED + extra + idBytes.length, name);
        return b.array();
    }

    /** The entries of the current snapshot table as they are in the file (unknown extra data is kept). */
    private List<byte[]> rawEntries(List<Qcow2Snapshot> list) throws IOException {
        List<byte[]> out = new ArrayList<>(list.size() + 1);
        ByteBuffer fixed = ByteBuffer.allocate(Qcow2Snapshot.FIXED).order(ByteOrder.BIG_ENDIAN);
        for (Qcow2Snapshot s : list) {
            storage.read(fixed.clear(), s.entryOffset());
            ByteBuffer e = ByteBuffer.allocate((int) Qcow2Snapshot.entryLength(fixed));
            storage.read(e, s.entryOffset());
            out.add(e.array());
        }
        return out;
    }

    private static long paddedLength(List<byte[]> entries) {
        long n = 0;
        for (byte[] e : entries) {
            n += (e.length + 7) & ~7;
        }
        return n;
    }

    private int clustersFor(long bytes) {
        return (int) Qcow2Checks.divCeil(bytes, clusterSize);
    }

    /** The host clusters of a table of {@code bytes} bytes at {@code offset} (none for an empty table). */
    private long[] tableClusters(long offset, long bytes) {
        if (bytes == 0) {
            return new long[0];
        }
        long first = offset >>> clusterBits;
        long last = (offset + bytes - 1) >>> clusterBits;
        return java.util.stream.LongStream.rangeClosed(first, last).toArray();
    }

    /** Allocates the clusters of a snapshot table of {@code entries}; 0 for none. */
    private long allocateTable(List<byte[]> entries) throws IOException {
        long bytes = paddedLength(entries);
        if (bytes > Qcow2Header.MAX_SNAPSHOTS_BYTES) {
            throw new ImageLimitException(resource, 64, "Snapshot table too large (" + bytes + " bytes)");
        }
        return bytes == 0 ? 0 : refcounts.allocateRun(clustersFor(bytes)) << clusterBits;
    }

    /**
     * Writes the snapshot table of {@code entries} at {@code offset} (allocated), syncs (with everything written
     * before), points the header at it and syncs again. The old table's clusters are the caller's to free.
     */
    private void switchSnapshotTable(List<byte[]> entries, long offset) throws IOException {
        long bytes = paddedLength(entries);
        List<Qcow2Snapshot> records = new ArrayList<>(entries.size());
        if (bytes > 0) {
            ByteBuffer t = ByteBuffer.allocate(clustersFor(bytes) * clusterSize);
            for (byte[] e : entries) {
                int at = t.position();
                t.put(e);
                t.position((t.position() + 7) & ~7);
                records.add(Qcow2Snapshot.parse(ByteBuffer.wrap(e), resource, offset + at));
            }
            storage.write(t.clear(), offset);
            growFile(offset + t.capacity());
        }
        // the refcounts of the new L1 copy and table (cached write-back) reach the disk with them
        refcounts.writeDirty();
        syncAll();
        ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putInt(0, entries.size()).putLong(4, offset);
        storage.write(h, 60);
        syncAll();
        snapshots = List.copyOf(records);
        snapshotsOffset = offset;
    }

    /** Discards clusters whose refcount dropped to 0 and forgets them as L2 tables. */
    private void freeClusters(List<Long> freed) throws IOException {
        for (long c : freed) {
            storage.discard(c << clusterBits, clusterSize);
            cache.invalidate(c << clusterBits);
        }
    }

    private static final long[] NONE = new long[0];

    /** The references of the path under one L1 entry, sorted, repeats kept. */
    @FunctionalInterface
    private interface Refs {
        long[] of(int l1Index) throws IOException;
    }

    private static boolean sameTable(long[] a, long[] b, int i) {
        long x = i < a.length ? a[i] & OFFSET_MASK : 0;
        long y = i < b.length ? b[i] & OFFSET_MASK : 0;
        return x == y;
    }

    /** Checks that {@code refs} of each of the first {@code count} L1 entries can change by {@code delta}. */
    private void checkEach(int count, Refs refs, int delta) throws IOException {
        for (int i = 0; i < count; i++) {
            refcounts.checkAdjust(refs.of(i), delta);
        }
    }

    /**
     * Changes the refcounts of {@code refs} of each of the first {@code count} L1 entries by {@code delta}, one L1
     * entry at a time (bounded memory), and returns the clusters freed. {@link #checkEach} passed before, so only a
     * cluster counted under several entries (a compressed cluster spanning two L2 tables) can still overflow: an
     * increment then undoes what it did before failing.
     */
    private List<Long> adjustEach(int count, Refs refs, int delta) throws IOException {
        List<Long> freed = new ArrayList<>();
        int i = 0;
        try {
            for (; i < count; i++) {
                freed.addAll(refcounts.adjust(refs.of(i), delta));
            }
        } catch (ImageLimitException e) {
            if (delta > 0) {
                for (int k = 0; k < i; k++) {
                    refcounts.adjust(refs.of(k), -delta);
                }
            }
            throw e;
        }
        return freed;
    }

    /**
     * The references the path under entry {@code i} of L1 table {@code table} holds: its L2 table and each host
     * cluster its entries reach (each cluster a compressed entry spans), sorted, repeats kept. The active table's L2
     * tables are read through the cache; a snapshot's directly, so that tables only it uses do not fill the cache.
     */
    private long[] subtree(long[] table, int i, boolean active) throws IOException {
        if (i >= table.length) {
            return NONE;
        }
        long l1e = table[i];
        long l2 = l1e & OFFSET_MASK;
        if ((l1e & L1E_RESERVED) != 0 || (l2 & (clusterSize - 1)) != 0 || l2 + clusterSize > fileSize) {
            throw new CorruptImageException(resource, -1, "L1 entry " + i + " (0x" + Long.toHexString(l1e)
                    + ") is invalid");
        }
        if (l2 == 0) {
            return NONE;
        }
        long[] entries = active ? cache.get(l2, this::loadL2) : loadL2(l2);
        long[] out = new long[entries.length + 1];
        int n = 0;
        out[n++] = l2 >>> clusterBits;
        List<Long> compressed = new ArrayList<>();
        // with extended L2 entries every second word is a subcluster bitmap
        for (int j = 0; j < entries.length; j += extendedL2 ? 2 : 1) {
            long e = entries[j];
            if ((e & COMPRESSED) != 0) {
                compressedClusters(e, compressed);
                continue;
            }
            long host = e & OFFSET_MASK;
            if ((e & L2E_RESERVED) != 0 || (host & (clusterSize - 1)) != 0 || host >= fileSize) {
                throw corruptL2(l2, extendedL2 ? j / 2 : j, e, "invalid entry");
            }
            if (host != 0) {
                out[n++] = host >>> clusterBits;
            }
        }
        if (!compressed.isEmpty()) {
            out = java.util.Arrays.copyOf(out, n + compressed.size());
            for (long c : compressed) {
                out[n++] = c;
            }
        }
        out = java.util.Arrays.copyOf(out, n);
        java.util.Arrays.sort(out);
        return out;
    }

    /** Clears the COPIED flags of the active L1 table and of the L2 tables it points at (all shared now). */
    private void clearCopied() throws IOException {
        setCopied(cluster -> false);
    }

    /**
     * Sets the COPIED flag of each active L1 and L2 entry whose cluster has refcount 1 and clears it elsewhere
     * (qemu's qcow2_update_snapshot_refcount with addend 0).
     */
    private void recomputeCopied() throws IOException {
        setCopied(cluster -> refcounts.get(cluster) == 1);
    }

    /** A test of a host cluster that may read refcounts. */
    @FunctionalInterface
    private interface ClusterTest {
        boolean test(long cluster) throws IOException;
    }

    /**
     * Sets the COPIED flag of each active L1 and L2 entry whose host cluster {@code owned} accepts and clears it
     * elsewhere (compressed and empty L2 entries have none); the changed L2 tables first, then the L1 table.
     */
    private void setCopied(ClusterTest owned) throws IOException {
        long[] cur = l1;
        long[] next = cur.clone();
        boolean changed = false;
        for (int i = 0; i < cur.length; i++) {
            long l2 = cur[i] & OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            long[] t = cache.get(l2, this::loadL2);
            boolean tableChanged = false;
            for (int j = 0; j < t.length; j += extendedL2 ? 2 : 1) {
                long e = t[j];
                long host = e & OFFSET_MASK;
                if ((e & COMPRESSED) != 0 || host == 0) {
                    continue;
                }
                long want = owned.test(host >>> clusterBits) ? e | COPIED : e & ~COPIED;
                if (want != e) {
                    t[j] = want;
                    tableChanged = true;
                }
            }
            if (tableChanged) {
                writeTable(t, l2);
            }
            next[i] = owned.test(l2 >>> clusterBits) ? l2 | COPIED : l2;
            changed |= next[i] != cur[i];
        }
        if (changed) {
            writeTable(next, l1Offset);
            l1 = next;
        }
    }

    private void writeTable(long[] table, long offset) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(table.length * 8).order(ByteOrder.BIG_ENDIAN);
        b.asLongBuffer().put(table);
        storage.write(b, offset);
    }

    /** The internal snapshots, oldest first ({@link InternalSnapshots#list}). */
    List<SnapshotInfo> snapshots() {
        return snapshots.stream().map(Qcow2Snapshot::info).toList();
    }

    /** {@inheritDoc} Internal snapshots are handed out as a view; the other capabilities are this instance. */
    @Override
    public <C extends Capability> Optional<C> capability(Class<C> type) {
        if (type == InternalSnapshots.class) {
            return Optional.of(type.cast(snapshotView));
        }
        return FormatInstance.super.capability(type);
    }

    /** The {@link InternalSnapshots} capability over this instance's snapshot methods. */
    private final InternalSnapshots snapshotView = new InternalSnapshots() {
        @Override
        public List<SnapshotInfo> list() {
            return snapshots();
        }

        @Override
        public SnapshotInfo create(String name) throws IOException {
            return createSnapshot(name);
        }

        @Override
        public void delete(String idOrName) throws IOException {
            deleteSnapshot(idOrName);
        }

        @Override
        public void apply(String idOrName) throws IOException {
            applySnapshot(idOrName);
        }
    };

    /** The parsed header (for tests and future writers). */
    Qcow2Header header() {
        return header;
    }

    /** How many clusters were decompressed (for tests). */
    long decompressions() {
        return decompressions.get();
    }

    /** The L2 cache (for tests). */
    Qcow2L2Cache cache() {
        return cache;
    }

    /**
     * Checks and repairs as {@code qemu-img check}; see {@link Qcow2Check}. A writable layer is flushed
     * first, and after a repair its tables, refcounts and caches are read again.
     */
    @Override
    public CheckReport check(Repair repair) throws IOException {
        Objects.requireNonNull(repair, "repair");
        if (repair != Repair.NONE && storage.readOnly()) {
            throw new ReadOnlyImageException(resource, "cannot repair a qcow2 image opened read-only");
        }
        if (refcounts != null) {
            flush();
        }
        allocLock.lock();
        try {
            awaitQuiet();
            if (refcounts != null) {
                // the check reads refcounts from the file: lazy ones too
                refcounts.writeDirty();
                storage.flush();
            }
            CheckReport report = new Qcow2Check(storage).run(repair);
            if (repair != Repair.NONE) {
                reload();
            }
            return report;
        } finally {
            allocLock.unlock();
        }
    }

    /** Reads the header, the active L1 table and the refcounts again after a repair changed them. */
    private void reload() throws IOException {
        long newFileSize = storage.size();
        ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
        storage.read(cluster0, 0);
        // what the repair could not fix is in its report: read the header back as the check does
        boolean lenient = refcounts == null;
        Qcow2Header h = Qcow2Header.parse(cluster0.flip(), resource, lenient ? Long.MAX_VALUE : newFileSize, lenient);
        // a repair may have written a new snapshot table
        List<Qcow2Snapshot> table = h.nbSnapshots() == 0 ? List.of()
                : lenient ? Qcow2Snapshot.readForCheck(storage, h, false, m -> { }).entries()
                : Qcow2Snapshot.readTable(storage, h, newFileSize);
        snapshots = List.copyOf(table);
        snapshotsOffset = table.isEmpty() ? 0 : h.snapshotsOffset();
        cache.clear();
        lastDecompressed.set(null);
        fileSize = newFileSize;
        syncedLength = 0;
        header = h;
        l1Offset = h.l1TableOffset();
        l1 = readTable(storage, h.l1TableOffset(), h.l1Size());
        if (refcounts != null) {
            refcounts = Qcow2Refcounts.open(storage, h, newFileSize);
        }
    }

    /**
     * {@inheritDoc} The persistent bitmaps marked in use while the image was written are stored (see
     * {@link Qcow2BitmapTracker}); then a writable image that lazy refcounts left dirty is marked clean (as
     * QEMU's qcow2_inactivate), unless writing fails: then the dirty bit stays for the next writable open to
     * repair.
     */
    @Override
    public void close() throws IOException {
        lastDecompressed.set(null);
        if (tracker != null && tracker.changed()) {
            allocLock.lock();
            try {
                tracker.store(new BitmapHost());
            } finally {
                allocLock.unlock();
            }
        }
        markClean();
    }

    /** Host clusters for the bitmap tracker, under the allocation lock. */
    private final class BitmapHost implements Qcow2BitmapTracker.Host {
        @Override
        public long allocateCluster() throws IOException {
            long at = refcounts.allocate() << clusterBits;
            growFile(at + clusterSize);
            return at;
        }

        @Override
        public long allocateRun(int clusters) throws IOException {
            long at = refcounts.allocateRun(clusters) << clusterBits;
            growFile(at + (long) clusters * clusterSize);
            return at;
        }

        @Override
        public void commit() throws IOException {
            flush();
            syncAll();
        }

        @Override
        public void release(long hostOffset) throws IOException {
            if (refcounts.decrement(hostOffset >>> clusterBits) == 0) {
                freeClusters(List.of(hostOffset >>> clusterBits));
            }
        }
    }

    @Override
    public String toString() {
        return "Qcow2Instance[" + resource + ", v" + header.version() + ", size " + size + ", cluster " + clusterSize
                + "]";
    }
}
