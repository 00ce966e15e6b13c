package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.MAX_HOST_OFFSET;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.Mapping;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * One open qcow2 layer, read-only: the header, the active (or a snapshot's) L1 table held in memory,
 * L2 tables in a {@link Qcow2L2Cache}, and the last decompressed cluster.
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
    private final long fileSize;
    private final long size;
    private final long[] l1;
    private final long l1Offset;
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

    private Qcow2Instance(Storage storage, Qcow2Header header, long fileSize, long size, long[] l1, long l1Offset,
            List<Qcow2Snapshot> snapshots, int cacheTables) {
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
            if (header.corrupt()) {
                throw new CorruptImageException(resource, 72, "qcow2: Image is corrupt; cannot be opened read/write");
            }
            throw new UnsupportedFeatureException(resource, "qcow2 writing",
                    "writing qcow2 images is not supported yet; open read-only");
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
        return new Qcow2Instance(storage, header, fileSize, size, l1, l1Offset, snapshots,
                cacheTables(context.options(), header, size, resource));
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
        if (first.kind() != Kind.COMPRESSED) {
            while (pos < end) {
                Unit next = unit(pos);
                if (next.kind() != first.kind()) {
                    break;
                }
                if (hasHost(first.kind()) && next.host() != first.host() + (pos - offset)) {
                    break;
                }
                pos = Math.min(next.end(), end);
            }
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

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) throws IOException {
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
        throw new ReadOnlyImageException(resource, offset, "qcow2 images are opened read-only");
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
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
