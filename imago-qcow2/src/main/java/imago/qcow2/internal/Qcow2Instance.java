package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.MAX_HOST_OFFSET;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.SnapshotInfo;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Dependency;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
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
final class Qcow2Instance implements FormatInstance {
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
    private final Qcow2Header header;
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
    private final List<Qcow2Snapshot> snapshots;
    private final Qcow2L2Cache cache;
    private final AtomicReference<Decompressed> lastDecompressed = new AtomicReference<>();
    private final AtomicLong decompressions = new AtomicLong();
    /** QEMU's metadata-preallocation guess, made on first use: null until then. */
    private volatile Boolean metadataPreallocated;
    private volatile Storage dataFile;
    private volatile long dataFileSize;
    /** Refcounts and allocator of a writable image; null when read-only. */
    private final Qcow2Refcounts refcounts;
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
     * An allocating write whose L2 entry is written only once its data is.
     *
     * @param mapping the mapping handed out
     * @param l2Offset the L2 table
     * @param index the entry in it
     * @param entry the new L2 entry
     * @param allocated the newly allocated host cluster, or -1 if the cluster was already ours
     * @param replaced the L2 entry the new one replaces (its clusters lose a reference on commit), or 0
     * @param copied whether part of the cluster was copied (from below, zeroes or a compressed cluster)
     */
    private record Pending(Mapping.Data mapping, long l2Offset, int index, long entry, long allocated, long replaced,
            boolean copied) {
    }

    private Qcow2Instance(Storage storage, Qcow2Header header, long fileSize, long size, long[] l1, long l1Offset,
            List<Qcow2Snapshot> snapshots, int cacheTables, Qcow2Refcounts refcounts) {
        this.refcounts = refcounts;
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
        this.cache = new Qcow2L2Cache(cacheTables);
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
        Qcow2Header header = Qcow2Header.parse(cluster0.flip(), resource, fileSize);
        if (context.writable()) {
            refuseWritable(header, context, resource);
        }
        List<Qcow2Snapshot> snapshots = header.nbSnapshots() > 0
                ? Qcow2Snapshot.readTable(storage, header, fileSize) : List.of();

        long l1Offset = header.l1TableOffset();
        int l1Size = header.l1Size();
        long size = header.size();
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
        if (context.writable()) {
            refcounts = Qcow2Refcounts.open(storage, header, fileSize);
            if (header.version() >= 3 && header.autoclearFeatures() != 0) {
                // imago maintains no autoclear feature: clear them before the first write (images with a bitmaps
                // extension were refused above, so no bitmap is lost here)
                storage.write(ByteBuffer.allocate(8), 88);
                storage.flush();
                storage.sync();
            }
        }
        return new Qcow2Instance(storage, header, fileSize, size, l1, l1Offset, snapshots,
                cacheTables(context.options(), header, size, resource), refcounts);
    }

    /** Refuses, before anything is written, writable opens of images this writer cannot keep consistent. */
    private static void refuseWritable(Qcow2Header header, OpenContext context, String resource) throws IOException {
        if (header.corrupt()) {
            throw new CorruptImageException(resource, 72, "qcow2: Image is corrupt; cannot be opened read/write");
        }
        if (header.dirty()) {
            throw new UnsupportedFeatureException(resource, "qcow2 dirty image repair",
                    "the image is dirty (lazy refcounts) and needs a refcount repair (qemu-img check -r all) "
                    + "before imago can open it read/write");
        }
        if (header.extendedL2()) {
            throw new UnsupportedFeatureException(resource, "qcow2 extended L2 writing",
                    "writing qcow2 images with extended L2 entries is not supported yet; open read-only");
        }
        if (header.hasDataFile()) {
            throw new UnsupportedFeatureException(resource, "qcow2 external data file writing",
                    "writing qcow2 images with an external data file is not supported yet; open read-only");
        }
        if (header.extensions().stream().anyMatch(e -> e.type() == Qcow2Header.EXT_BITMAPS)) {
            // clearing the autoclear bit (as a writer without bitmap support may) would silently invalidate the
            // user's bitmaps and leak their clusters: refuse instead
            throw new UnsupportedFeatureException(resource, "qcow2 persistent bitmaps",
                    "writing qcow2 images with persistent dirty bitmaps is not supported yet; open read-only, or remove "
                    + "the bitmaps first (qemu-img bitmap --remove)");
        }
        if (context.options().get("snapshot") != null) {
            throw new UnsupportedFeatureException(resource, "qcow2 snapshot writing",
                    "an internal snapshot can only be opened read-only");
        }
        if ((header.refcountTableOffset() & (header.clusterSize() - 1)) != 0) {
            throw new CorruptImageException(resource, 48, "refcount table offset is not cluster aligned");
        }
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
            if (hasHost(first.kind()) && next.host() != first.host() + (pos - offset)) {
                break;
            }
            pos = Math.min(next.end(), limit);
        }
        long length = pos - offset;
        return switch (first.kind()) {
            case UNALLOCATED -> new Mapping.Unallocated(offset, length);
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
        return alloc ? new Unit(Kind.DATA, host + inCluster, subEnd, entry)
                : new Unit(Kind.UNALLOCATED, -1, subEnd, entry);
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
            UnsupportedFeatureException u = new UnsupportedFeatureException(resource, "zstd compression",
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

    @Override
    public Mapping.Data ensureDataMapping(long offset, long length, BackingReader below) throws IOException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
        }
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(resource + ": bad write: offset " + offset + ", length " + length);
        }
        allocLock.lock();
        boolean keepLock = false;
        try {
            if (pending != null) {
                throw new IllegalStateException(resource + ": the previous allocating write was not completed");
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
            boolean own = !sharedL2 && (entry & COPIED) != 0;
            if (u.kind() == Kind.DATA && own) {
                // refcount 1: write in place
                Mapping.Data d = new Mapping.Data(offset, n, storage, (entry & OFFSET_MASK) + inCluster);
                inPlace.readLock().lock();
                return d;
            }
            if (u.kind() == Kind.ZERO_ALLOC && own) {
                long host = entry & OFFSET_MASK;
                copyOnWrite(host, clusterStart, inCluster, n, BackingReader.ZEROES);
                Mapping.Data d = new Mapping.Data(offset, n, storage, host + inCluster);
                pending = new Pending(d, l2Offset, index, host | COPIED, -1, 0, n < clusterSize);
                keepLock = true;
                return d;
            }
            switch (u.kind()) {
                case UNALLOCATED, ZERO_PLAIN, COMPRESSED, DATA, ZERO_ALLOC -> {
                    // a new cluster; a shared one (COPIED clear) is copied and loses the reference on commit
                    if (!refcounts.canAllocate(l2Offset == 0 || sharedL2 ? 2 : 1)) {
                        throw new UnsupportedFeatureException(resource, "qcow2 refcount table growth",
                                "the image needs a larger refcount table, which imago cannot allocate yet");
                    }
                    if (l2Offset == 0) {
                        l2Offset = allocateL2(l1Index);
                    } else if (sharedL2) {
                        l2Offset = copyL2(l1Index, l2Offset);
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
                    pending = new Pending(d, l2Offset, index, host | COPIED, c, entry, n < clusterSize);
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
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
        }
        int length = cluster.remaining();
        if ((offset & (clusterSize - 1)) != 0 || offset < 0 || offset >= size || length < 1 || length > clusterSize
                || length < clusterSize && offset + length != size) {
            throw new IllegalArgumentException(resource + ": a compressed write must cover one whole cluster (or the "
                    + "last one up to the end of the image), got " + length + " bytes at offset " + offset);
        }
        byte[] plain = new byte[clusterSize];
        cluster.get(cluster.position(), plain, 0, length);
        // QEMU only stores data compressed when it needs at most cluster_size - 1 bytes
        byte[] packed = new byte[clusterSize - 1];
        int n = header.compressionType() == 0 ? Qcow2Deflate.compress(plain, packed) : zstd(plain, packed);
        if (n <= 0) {
            return false;
        }
        allocLock.lock();
        try {
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
            long entry = l2Offset == 0 ? 0 : cache.get(l2Offset, this::loadL2)[index];
            if ((entry & COMPRESSED) != 0 || (entry & OFFSET_MASK) != 0) {
                // QEMU's qcow2_alloc_compressed_cluster_offset refuses (EIO) as well
                throw new ImageException(resource, "cannot write compressed data to guest offset " + offset
                        + ": the cluster is already allocated (compressed data can only be written to unallocated "
                        + "clusters)");
            }
            if ((l2Offset == 0 || sharedL2) && !refcounts.canAllocate(1)) {
                throw new UnsupportedFeatureException(resource, "qcow2 refcount table growth",
                        "the image needs a larger refcount table, which imago cannot allocate yet");
            }
            if (l2Offset == 0) {
                l2Offset = allocateL2(l1Index);
            } else if (sharedL2) {
                l2Offset = copyL2(l1Index, l2Offset);
            }
            long host = refcounts.allocateBytes(n);
            growFile(((host + n - 1) | (clusterSize - 1)) + 1);
            try {
                storage.write(ByteBuffer.wrap(packed, 0, n), host);
            } catch (IOException | RuntimeException e) {
                refcounts.freeBytes(host, n);
                throw e;
            }
            // the sector count field holds the number of 512-byte sectors touched after the first
            long sectors = ((host + n - 1) >>> 9) - (host >>> 9);
            long newEntry = COMPRESSED | host | (sectors << (62 - (clusterBits - 8)));
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newEntry);
            storage.write(e, l2Offset + index * 8L);
            cache.get(l2Offset, this::loadL2)[index] = newEntry;
            return true;
        } finally {
            allocLock.unlock();
        }
    }

    private int zstd(byte[] plain, byte[] packed) throws UnsupportedFeatureException {
        try {
            return Qcow2Zstd.compress(plain, packed);
        } catch (LinkageError e) {
            UnsupportedFeatureException u = new UnsupportedFeatureException(resource, "zstd compression",
                    "zstd support is not installed (add zstd-jni to the module path, and resolve it with "
                    + "--add-modules com.github.luben.zstd_jni when imago runs as modules)");
            u.addSuppressed(e);
            throw u;
        }
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        return zeroClusters(offset, length, mayUnmap, false);
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
        }
        long cs = clusterSize;
        long first = (offset + cs - 1) & ~(cs - 1);
        long pos = first;
        long end = offset + length;
        while (pos < end) {
            long handled = zeroClusters(pos, end - pos, true, true);
            if (handled == 0) {
                // a cluster imago cannot unmap (compressed, shared) keeps its data, which a discard allows
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
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, offset, "the qcow2 image is opened read-only");
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
            while (pos < end && zeroCluster(pos, unmap, discard)) {
                pos += clusterSize;
            }
        } finally {
            allocLock.unlock();
        }
        return Math.min(pos, requestEnd) - offset;
    }

    private boolean zeroCluster(long pos, boolean unmap, boolean discard) throws IOException {
        boolean backing = header.backingFile().filter(n -> !n.isEmpty()).isPresent();
        boolean v3 = header.version() >= 3;
        Unit u = unit(pos);
        long cluster = pos >>> clusterBits;
        int l1Index = (int) (cluster >>> l2Bits);
        int index = (int) (cluster & ((1L << l2Bits) - 1));
        long l1e = l1[l1Index];
        long l2Offset = l1e & OFFSET_MASK;
        boolean sharedL2 = l2Offset != 0 && (l1e & COPIED) == 0;
        long newEntry;
        long freeHost = -1;
        long replacedCompressed = 0;
        switch (u.kind()) {
            case COMPRESSED -> {
                if (!v3 && backing) {
                    return discard;
                }
                newEntry = !v3 || discard && !backing ? 0 : ZERO_FLAG;
                replacedCompressed = cache.get(l2Offset, this::loadL2)[index];
            }
            case ZERO_PLAIN -> {
                return true;
            }
            case UNALLOCATED -> {
                if (!backing || discard && !v3) {
                    // reads as zero already, or (v2 discard) keeps the backing data, which a discard allows
                    return true;
                }
                if (!v3) {
                    return false;
                }
                if (l2Offset == 0) {
                    if (!refcounts.canAllocate(1)) {
                        return false;
                    }
                    l2Offset = allocateL2(l1Index);
                }
                newEntry = ZERO_FLAG;
            }
            case DATA, ZERO_ALLOC -> {
                long entry = cache.get(l2Offset, this::loadL2)[index];
                long host = entry & OFFSET_MASK;
                if (sharedL2 && (entry & COPIED) != 0) {
                    throw corruptL2(l2Offset, index, entry, "COPIED set in an L2 table shared with a snapshot");
                }
                if ((entry & COPIED) == 0) {
                    // shared with a snapshot: the active image lets go of it
                    if (!v3 && backing) {
                        return discard;
                    }
                    newEntry = !v3 || discard && !backing ? 0 : ZERO_FLAG;
                    freeHost = host;
                } else if (!unmap) {
                    if (!v3) {
                        return false;
                    }
                    if (u.kind() == Kind.ZERO_ALLOC) {
                        return true;
                    }
                    newEntry = host | COPIED | ZERO_FLAG;
                } else {
                    if (!v3 && backing) {
                        return discard;
                    }
                    newEntry = !v3 || discard && !backing ? 0 : ZERO_FLAG;
                    freeHost = host;
                }
            }
            default -> throw new IllegalStateException(u.kind().toString());
        }
        if (sharedL2) {
            if (!refcounts.canAllocate(1)) {
                return false;
            }
            l2Offset = copyL2(l1Index, l2Offset);
        }
        ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newEntry);
        storage.write(e, l2Offset + index * 8L);
        cache.get(l2Offset, this::loadL2)[index] = newEntry;
        if (freeHost >= 0) {
            pendingDecrefs.add(freeHost >>> clusterBits);
        }
        if (replacedCompressed != 0) {
            compressedClusters(replacedCompressed, pendingDecrefs);
        }
        return true;
    }

    /**
     * {@inheritDoc} Grows an image without a backing file, with preallocation off; the L1 table grows in
     * place within its clusters or moves to new ones. Everything else is refused before anything changes.
     */
    @Override
    public void resize(long newSize, Preallocation preallocation) throws IOException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, -1, "the qcow2 image is opened read-only");
        }
        if ((newSize & 511) != 0) {
            // QEMU's message, word for word
            throw new IllegalArgumentException("The new size must be a multiple of 512");
        }
        allocLock.lock();
        try {
            long oldSize = size;
            if (newSize == oldSize) {
                return;
            }
            if (newSize < oldSize) {
                if (preallocation != Preallocation.OFF) {
                    throw new IllegalArgumentException(resource
                            + ": Preallocation can only be used for growing images");
                }
                shrink(oldSize, newSize);
                return;
            }
            if (header.backingFile().filter(n -> !n.isEmpty()).isPresent()) {
                throw new UnsupportedFeatureException(resource, "qcow2 resize with backing file", "growing a qcow2 image "
                        + "that has a backing file (whose data would show through) is not supported yet");
            }
            long[] old = l1;
            long entries = Qcow2Header.l1EntriesFor(newSize, clusterBits, l2Bits);
            long room = Qcow2Checks.divCeil(old.length * 8L, clusterSize) * clusterSize / 8;
            if (entries * 8 > Qcow2Header.MAX_L1_BYTES) {
                throw new ImageLimitException(resource, 36, "growing to " + newSize + " bytes needs an L1 table of "
                        + entries + " entries: Active L1 table too large");
            }
            long tailHost = -1;
            if ((oldSize & (clusterSize - 1)) != 0) {
                // the bytes of the last cluster past the old end must read as zero after growing
                Unit tail = unit(oldSize - 1);
                if (tail.kind() == Kind.COMPRESSED || tail.kind() == Kind.DATA && (tail.entry() & COPIED) == 0) {
                    rewriteTail(oldSize, tail);
                }
                if (tail.kind() == Kind.DATA) {
                    tailHost = tail.host() + 1;
                }
            }
            if (tailHost >= 0) {
                long n = clusterSize - (oldSize & (clusterSize - 1));
                storage.write(ByteBuffer.allocate((int) n), tailHost);
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
            // the new L1 entries (zero) and the zeroed tail are on stable media before the header grows
            storage.sync();
            ByteBuffer h = ByteBuffer.allocate(24).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize)
                    .putInt(8, header.cryptMethod()).putInt(12, (int) Math.max(entries, old.length))
                    .putLong(16, newL1Offset);
            storage.write(h, 24);
            storage.sync();
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
                preallocate(oldSize, newSize, preallocation);
            }
        } finally {
            allocLock.unlock();
        }
    }

    /**
     * Copies the last, partial cluster of an image about to grow, which is compressed or shared with a
     * snapshot, to a new cluster of its own with the bytes past the old end zeroed: synced before the L2
     * entry points at it; the old cluster loses the reference on the next flush.
     */
    private void rewriteTail(long oldSize, Unit tail) throws IOException {
        long clusterStart = (oldSize - 1) & ~(long) (clusterSize - 1);
        long guestCluster = clusterStart >>> clusterBits;
        int l1Index = (int) (guestCluster >>> l2Bits);
        int index = (int) (guestCluster & ((1L << l2Bits) - 1));
        long l1e = l1[l1Index];
        if ((l1e & COPIED) == 0 || !refcounts.canAllocate(1)) {
            throw new UnsupportedFeatureException(resource, "qcow2 resize", "growing an image whose last cluster "
                    + "lies in an L2 table shared with a snapshot is not supported yet");
        }
        long l2Offset = l1e & OFFSET_MASK;
        long entry = tail.entry();
        byte[] plain;
        if (tail.kind() == Kind.COMPRESSED) {
            plain = decompressed(entry, clusterStart).clone();
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
            storage.sync();
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        long newEntry = host | COPIED;
        ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newEntry);
        storage.write(e, l2Offset + index * 8L);
        cache.get(l2Offset, this::loadL2)[index] = newEntry;
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
            long[] table = cache.get(l2Offset, this::loadL2);
            long entry = table[index];
            if (entry != 0 && (l1[l1Index] & COPIED) == 0) {
                // an L2 table shared with a snapshot is copied before it changes, as QEMU's discard does
                if (!refcounts.canAllocate(1)) {
                    throw new UnsupportedFeatureException(resource, "qcow2 refcount table growth",
                            "the image needs a larger refcount table, which imago cannot allocate yet");
                }
                l2Offset = copyL2(l1Index, l2Offset);
                table = cache.get(l2Offset, this::loadL2);
            }
            if (entry != 0) {
                ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN);
                storage.write(e, l2Offset + index * 8L);
                table[index] = 0;
                dropReference(entry);
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
                    cache.remove(l2Offset);
                    shorter[i] = 0;
                }
            }
            l1 = shorter;
        }
        // the cleared entries reach stable media (in flush, before the refcounts drop) before the header shrinks
        flush();
        ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, newSize);
        storage.write(h, 24);
        storage.sync();
        size = newSize;
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
     * allocation lock held, by create and by resize.
     */
    void preallocate(long from, long to, Preallocation mode) throws IOException {
        if (refcounts == null) {
            throw new ReadOnlyImageException(resource, -1, "the qcow2 image is opened read-only");
        }
        allocLock.lock();
        try {
            long oldEnd = storage.size();
            long c = from >>> clusterBits;
            long last = Qcow2Checks.divCeil(to, clusterSize);
            // contiguous runs stay inside one refcount block (each new block takes the first cluster it covers)
            int maxRun = refcounts.maxRun();
            long lastHost = -1;
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
                long[] entries = Arrays.copyOfRange(table, start, end);
                boolean changed = false;
                long growTo = storage.size();
                for (int i = 0; i < entries.length; ) {
                    if ((entries[i] & COMPRESSED) != 0 || (entries[i] & OFFSET_MASK) != 0) {
                        i++;
                        continue;
                    }
                    int n = 1;
                    while (i + n < entries.length && n < maxRun && (entries[i + n] & COMPRESSED) == 0
                            && (entries[i + n] & OFFSET_MASK) == 0) {
                        n++;
                    }
                    long host = refcounts.allocateRun(n) << clusterBits;
                    long runEnd = host + (long) n * clusterSize;
                    if (runEnd > storage.size()) {
                        // before the writes below, which would grow the file without reserving space
                        storage.resize(runEnd, mode == Preallocation.METADATA ? Preallocation.OFF : mode);
                    }
                    if (host < oldEnd) {
                        // freed clusters may hold old data: they must read as zero like the new space
                        long zeroEnd = Math.min(runEnd, oldEnd);
                        storage.writeZeroes(host, zeroEnd - host, mode == Preallocation.METADATA);
                    }
                    long guest = (c + i) << clusterBits;
                    if (guest < from) {
                        // the old last cluster: QEMU copies its head (zeroes) on allocation, so it is written
                        storage.write(ByteBuffer.allocate((int) (from - guest)), host);
                    }
                    long lastGuest = (c + i + n - 1) << clusterBits;
                    if (lastGuest + clusterSize > to) {
                        // the new last cluster: QEMU copies its tail (zeroes) on allocation, so it is written
                        storage.write(ByteBuffer.allocate((int) (lastGuest + clusterSize - to)),
                                runEnd - (lastGuest + clusterSize - to));
                    }
                    growTo = Math.max(growTo, runEnd);
                    lastHost = runEnd - clusterSize;
                    for (int k = 0; k < n; k++) {
                        entries[i + k] = (host + (long) k * clusterSize) | COPIED;
                    }
                    changed = true;
                    i += n;
                }
                if (changed) {
                    growFile(growTo);
                    // the refcounts and the zeroed clusters reach stable media before the L2 entries
                    storage.sync();
                    ByteBuffer b = ByteBuffer.allocate(entries.length * 8).order(ByteOrder.BIG_ENDIAN);
                    b.asLongBuffer().put(entries);
                    storage.write(b, l2Offset + start * 8L);
                    System.arraycopy(entries, 0, table, start, entries.length);
                }
                c += end - start;
            }
            if (lastHost >= 0) {
                // unused reservations past the last preallocated cluster would leave the file longer than QEMU's,
                // which ends with that cluster: give them back and end the file there
                refcounts.release();
                long used = Qcow2Checks.divCeil(storage.size(), clusterSize) - 1;
                while (used >= 0 && refcounts.get(used) == 0) {
                    used--;
                }
                long end = lastHost + clusterSize;
                if (used == lastHost >>> clusterBits && storage.size() > end) {
                    storage.resize(end, Preallocation.OFF);
                }
            }
        } finally {
            allocLock.unlock();
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
            storage.sync();
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, l2 | COPIED);
            storage.write(e, l1Offset + l1Index * 8L);
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        l1[l1Index] = l2 | COPIED;
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
            // the empty table must be on stable media before the L1 entry can point at it
            storage.sync();
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, l2 | COPIED);
            storage.write(e, l1Offset + l1Index * 8L);
        } catch (IOException | RuntimeException e) {
            refcounts.free(c);
            throw e;
        }
        l1[l1Index] = l2 | COPIED;
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
        ByteBuffer buf = ByteBuffer.allocate(to - from);
        // only bytes inside the virtual size come from below; the rest of the last cluster is zero
        long readable = Math.max(0, Math.min(to, size - clusterStart) - from);
        if (readable > 0) {
            source.read(buf.limit((int) readable), clusterStart + from);
        }
        storage.write(buf.clear(), host + from);
    }

    @Override
    public void completeWrite(Mapping.Data mapping, IOException failure) throws IOException {
        if (!allocLock.isHeldByCurrentThread() || pending == null || pending.mapping() != mapping) {
            if (inPlace.getReadHoldCount() > 0) {
                inPlace.readLock().unlock();
            }
            return;
        }
        Pending p = pending;
        pending = null;
        try {
            if (failure == null) {
                if (p.copied()) {
                    // bytes the guest did not write (copied from below) must not be lost by a power failure
                    // once the L2 entry points at the new cluster, as qemu orders them (perform_cow)
                    storage.sync();
                }
                // the data is written: now the L2 entry may point at it
                ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, p.entry());
                storage.write(e, p.l2Offset() + p.index() * 8L);
                cache.get(p.l2Offset(), this::loadL2)[p.index()] = p.entry();
                dropReference(p.replaced());
            } else if (p.allocated() >= 0) {
                refcounts.free(p.allocated());
            }
        } finally {
            allocLock.unlock();
        }
    }

    @Override
    public void flush() throws IOException {
        if (refcounts != null) {
            allocLock.lock();
            try {
                // exact refcounts for the packed compressed clusters first: the drops below count from them
                refcounts.closeRun();
                pendingDecrefs.addAll(refcounts.takeRetired());
                if (!pendingDecrefs.isEmpty()) {
                    inPlace.writeLock().lock();
                    try {
                        // the L2 updates that dropped these references reach stable media before the refcounts drop
                        storage.sync();
                        while (!pendingDecrefs.isEmpty()) {
                            long c = pendingDecrefs.getLast();
                            long left = refcounts.decrement(c);
                            pendingDecrefs.removeLast();
                            if (left == 0) {
                                // nothing can reallocate the cluster before the allocation lock is released
                                storage.discard(c << clusterBits, clusterSize);
                            }
                        }
                    } finally {
                        inPlace.writeLock().unlock();
                    }
                }
                // metadata is written through in dependency order; give back the unused reservation
                refcounts.release();
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
    public void attachDataFile(Storage data) throws IOException {
        Objects.requireNonNull(data, "data");
        if (!header.hasDataFile()) {
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

    @Override
    public List<SnapshotInfo> snapshots() {
        return snapshots.stream().map(Qcow2Snapshot::info).toList();
    }

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

    @Override
    public void close() {
        lastDecompressed.set(null);
    }

    @Override
    public String toString() {
        return "Qcow2Instance[" + resource + ", v" + header.version() + ", size " + size + ", cluster " + clusterSize
                + "]";
    }
}
