package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.MAX_HOST_OFFSET;
import static imago.qcow2.internal.Qcow2Checks.aligned;
import static imago.qcow2.internal.Qcow2Checks.divCeil;
import static imago.qcow2.internal.Qcow2Checks.u32;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The qcow2 header (cluster 0): the fixed fields, the header extensions and the backing file name,
 * validated against QEMU's limits when parsed. See the layout table in {@code package-info.java}.
 *
 * @param version 2 or 3
 * @param backingFileOffset where the backing file name is, 0 for none
 * @param backingFileSize its length in bytes
 * @param clusterBits log2 of the cluster size, 9..21
 * @param size the virtual size in bytes
 * @param cryptMethod 0 (none) or 2 (LUKS, its header where the crypto header extension says); 1 (AES) is refused
 * @param l1Size entries of the active L1 table
 * @param l1TableOffset host offset of the active L1 table
 * @param refcountTableOffset host offset of the refcount table
 * @param refcountTableClusters its length in clusters
 * @param nbSnapshots number of internal snapshots
 * @param snapshotsOffset host offset of the snapshot table
 * @param incompatibleFeatures incompatible feature bits (v3)
 * @param compatibleFeatures compatible feature bits (v3)
 * @param autoclearFeatures autoclear feature bits (v3)
 * @param refcountOrder log2 of the refcount width in bits
 * @param headerLength bytes of the fixed header (72 for v2)
 * @param compressionType 0 deflate, 1 zstd
 * @param extensions every header extension, in file order (unknown ones included)
 * @param backingFile the backing file name, if any
 * @param backingFormat the backing format extension, if any
 * @param dataFile the external data file name extension, if any
 */
record Qcow2Header(int version, long backingFileOffset, int backingFileSize, int clusterBits, long size,
        int cryptMethod, int l1Size, long l1TableOffset, long refcountTableOffset, int refcountTableClusters,
        int nbSnapshots, long snapshotsOffset, long incompatibleFeatures, long compatibleFeatures,
        long autoclearFeatures, int refcountOrder, int headerLength, int compressionType,
        List<Qcow2Extension> extensions, Optional<String> backingFile, Optional<String> backingFormat,
        Optional<String> dataFile) {

    static final int MAGIC = 0x514649FB;
    static final int V2_HEADER_LENGTH = 72;
    static final int V3_MIN_HEADER_LENGTH = 104;

    static final long INCOMPAT_DIRTY = 1L;
    static final long INCOMPAT_CORRUPT = 1L << 1;
    static final long INCOMPAT_DATA_FILE = 1L << 2;
    static final long INCOMPAT_COMPRESSION = 1L << 3;
    static final long INCOMPAT_EXTL2 = 1L << 4;
    static final long INCOMPAT_KNOWN = 0x1FL;
    static final long COMPAT_LAZY_REFCOUNTS = 1L;
    static final long AUTOCLEAR_BITMAPS = 1L;
    static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;

    static final int CRYPT_AES = 1;
    static final int CRYPT_LUKS = 2;

    static final int EXT_END = 0;
    static final int EXT_BACKING_FORMAT = 0xE2792ACA;
    static final int EXT_FEATURE_NAMES = 0x6803F857;
    static final int EXT_BITMAPS = 0x23852875;
    static final int EXT_CRYPTO = 0x0537BE77;
    static final int EXT_DATA_FILE = 0x44415441;

    /** QEMU's limits (block/qcow2.h). */
    static final long MAX_L1_BYTES = 32L << 20;
    static final long MAX_REFTABLE_BYTES = 8L << 20;
    static final int MAX_SNAPSHOTS = 65536;
    static final long MAX_SNAPSHOTS_BYTES = 64L << 20;

    /** Freezes the extension list. */
    Qcow2Header {
        extensions = List.copyOf(extensions);
    }

    int clusterSize() {
        return 1 << clusterBits;
    }

    /** Whether the data clusters are encrypted (LUKS). */
    boolean encrypted() {
        return cryptMethod == CRYPT_LUKS;
    }

    /** The LUKS header's {offset, length} from the crypto header extension (validated by parse), or empty. */
    Optional<long[]> cryptoRegion() {
        return extensions.stream().filter(e -> e.type() == EXT_CRYPTO).findFirst().map(e -> {
            ByteBuffer d = ByteBuffer.wrap(e.data());
            return new long[] {d.getLong(0), d.getLong(8)};
        });
    }

    boolean extendedL2() {
        return (incompatibleFeatures & INCOMPAT_EXTL2) != 0;
    }

    boolean hasDataFile() {
        return (incompatibleFeatures & INCOMPAT_DATA_FILE) != 0;
    }

    boolean dataFileRaw() {
        return (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    boolean dirty() {
        return (incompatibleFeatures & INCOMPAT_DIRTY) != 0;
    }

    boolean corrupt() {
        return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0;
    }

    boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /** This header with other incompatible feature bits (as after writing them at offset 72). */
    Qcow2Header withIncompatibleFeatures(long features) {
        return new Qcow2Header(version, backingFileOffset, backingFileSize, clusterBits, size, cryptMethod, l1Size,
                l1TableOffset, refcountTableOffset, refcountTableClusters, nbSnapshots, snapshotsOffset, features,
                compatibleFeatures, autoclearFeatures, refcountOrder, headerLength, compressionType, extensions,
                backingFile, backingFormat, dataFile);
    }

    /**
     * The virtual size the image has: the header's {@link #size} rounded down to whole 512-byte sectors, as QEMU
     * counts it ({@code total_sectors}); QEMU writes only multiples of 512, another writer may not.
     */
    long guestSize() {
        return size & -512L;
    }

    /** log2 of the number of entries in one L2 table. */
    int l2Bits() {
        return clusterBits - (extendedL2() ? 4 : 3);
    }

    /** L1 entries needed to map {@code virtualSize} bytes. */
    static long l1EntriesFor(long virtualSize, int clusterBits, int l2Bits) {
        return divCeil(virtualSize, 1L << (clusterBits + l2Bits));
    }

    /** The minimum number of bytes {@link #parse} looks at before it knows the cluster size. */
    static int fixedLength() {
        return V3_MIN_HEADER_LENGTH + 8;
    }

    /** Reads the cluster size from the first bytes, validating only the magic, version and cluster bits. */
    static int clusterSizeOf(ByteBuffer head, String resource) throws ImageException {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        int p = b.position();
        if (b.remaining() < V2_HEADER_LENGTH || b.getInt(p) != MAGIC) {
            throw new CorruptImageException(resource, 0, "Image is not in qcow2 format");
        }
        int version = b.getInt(p + 4);
        if (version < 2 || version > 3) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "qcow2 version " + Integer.toUnsignedString(version),
                    "Unsupported qcow2 version " + Integer.toUnsignedString(version));
        }
        int clusterBits = b.getInt(p + 20);
        if (clusterBits < 9 || clusterBits > 21) {
            // QEMU's words (it prints the field as a signed int); the valid range is 2^9 to 2^21
            throw new CorruptImageException(resource, 20, "Unsupported cluster size: 2^" + clusterBits);
        }
        return 1 << clusterBits;
    }

    /**
     * Parses and validates the header in {@code cluster0} (the whole first cluster of the file,
     * zero-filled past the end of the file).
     *
     * @param cluster0 the first cluster
     * @param resource the file name for messages
     * @param fileSize the file's size, to keep tables inside it
     * @throws CorruptImageException if a field is invalid
     * @throws UnsupportedFeatureException if the image needs a feature imago lacks
     * @throws ImageLimitException if a table is larger than QEMU allows
     */
    static Qcow2Header parse(ByteBuffer cluster0, String resource, long fileSize) throws ImageException {
        return parse(cluster0, resource, fileSize, false);
    }

    /**
     * As {@link #parse(ByteBuffer, String, long)}; {@code forCheck} leaves the snapshot table's count and offset
     * unvalidated, since the check reports a damaged table as QEMU's does (qcow2_check_read_snapshot_table).
     */
    static Qcow2Header parse(ByteBuffer cluster0, String resource, long fileSize, boolean forCheck)
            throws ImageException {
        return parse(cluster0, resource, fileSize, forCheck, false);
    }

    /**
     * As {@link #parse(ByteBuffer, String, long, boolean)}; {@code unnamedDataFile} accepts an external data file
     * without a name, which {@code amend -o data_file=} leaves behind (as in QEMU) and opening refuses.
     */
    static Qcow2Header parse(ByteBuffer cluster0, String resource, long fileSize, boolean forCheck,
            boolean unnamedDataFile) throws ImageException {
        int cs = clusterSizeOf(cluster0, resource);
        ByteBuffer b = cluster0.slice().order(ByteOrder.BIG_ENDIAN);
        if (b.remaining() < cs) {
            throw new IllegalArgumentException("need the whole first cluster, got " + b.remaining() + " bytes");
        }
        if (fileSize < V2_HEADER_LENGTH) {
            throw new CorruptImageException(resource, fileSize, "file is too short for a qcow2 header");
        }
        int version = b.getInt(4);
        long backingFileOffset = b.getLong(8);
        int backingFileSize = b.getInt(16);
        int clusterBits = b.getInt(20);
        long size = b.getLong(24);
        int cryptMethod = b.getInt(32);
        int l1Size = b.getInt(36);
        long l1TableOffset = b.getLong(40);
        long refcountTableOffset = b.getLong(48);
        int refcountTableClusters = b.getInt(56);
        int nbSnapshots = b.getInt(60);
        long snapshotsOffset = b.getLong(64);
        long incompatible = 0;
        long compatible = 0;
        long autoclear = 0;
        int refcountOrder = 4;
        int headerLength = V2_HEADER_LENGTH;
        int compressionType = 0;
        if (version == 3) {
            incompatible = b.getLong(72);
            compatible = b.getLong(80);
            autoclear = b.getLong(88);
            refcountOrder = b.getInt(96);
            headerLength = b.getInt(100);
            if (headerLength < V3_MIN_HEADER_LENGTH) {
                throw new CorruptImageException(resource, 100, "qcow2 header too short: header_length "
                        + Integer.toUnsignedString(headerLength) + " < 104");
            }
            if (headerLength > cs) {
                throw new CorruptImageException(resource, 100, "qcow2 header exceeds cluster size (header_length "
                        + Integer.toUnsignedString(headerLength) + " > " + cs + ")");
            }
            if (headerLength % 8 != 0) {
                throw new CorruptImageException(resource, 100, "qcow2 header length " + headerLength
                        + " is not a multiple of 8");
            }
            if (headerLength > V3_MIN_HEADER_LENGTH) {
                compressionType = b.get(104) & 0xFF;
            }
        }
        if (backingFileOffset != 0) {
            if (backingFileOffset < 0 || backingFileOffset > cs) {
                throw new CorruptImageException(resource, 8, "Invalid backing file offset "
                        + Long.toUnsignedString(backingFileOffset) + " (outside cluster 0)");
            }
            if (u32(backingFileSize) > 1023) {
                throw new CorruptImageException(resource, 16, "Backing file name too long ("
                        + Integer.toUnsignedString(backingFileSize) + " > 1023 bytes)");
            }
            if (backingFileOffset + backingFileSize > cs) {
                throw new CorruptImageException(resource, 8, "backing file name extends past cluster 0");
            }
            if (backingFileOffset < headerLength) {
                throw new CorruptImageException(resource, 8, "backing file name overlaps the header");
            }
        }

        List<Qcow2Extension> extensions = Qcow2Extension.parseAll(b, resource, headerLength,
                backingFileOffset != 0 ? (int) backingFileOffset : cs);
        List<Qcow2Extension.FeatureName> names = new ArrayList<>();
        Optional<String> backingFormat = Optional.empty();
        Optional<String> dataFile = Optional.empty();
        for (Qcow2Extension e : extensions) {
            switch (e.type()) {
                case EXT_BACKING_FORMAT -> {
                    if (e.data().length >= 16) {
                        throw new CorruptImageException(resource, e.offset(), "backing format extension is "
                                + e.data().length + " bytes long (must be < 16)");
                    }
                    backingFormat = Optional.of(Qcow2Extension.cString(e.data()));
                }
                case EXT_FEATURE_NAMES -> names.addAll(e.featureNames());
                case EXT_DATA_FILE -> dataFile = Optional.of(Qcow2Extension.cString(e.data())).filter(n -> !n.isEmpty());
                default -> {
                    // bitmaps, the crypto header and unknown extensions are kept but not interpreted
                }
            }
        }

        // incompatible features before anything that depends on them
        long unknown = incompatible & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            List<String> named = new ArrayList<>();
            for (int bit = 0; bit < 64; bit++) {
                if ((unknown & (1L << bit)) == 0) {
                    continue;
                }
                int fb = bit;
                named.add(names.stream().filter(n -> n.type() == 0 && n.bit() == fb).map(Qcow2Extension.FeatureName::name)
                        .findFirst().orElse("unknown incompatible feature bit " + bit));
            }
            String list = String.join(", ", named);
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, list, "Unsupported qcow2 feature(s): " + list);
        }
        if (cryptMethod == CRYPT_AES) {
            // QEMU's legacy AES-CBC encryption is broken by design; QEMU 7.2 reads it only with a flag
            throw new UnsupportedFeatureException(resource, Feature.ENCRYPTION, "AES encryption",
                    "encrypted images are not supported");
        }
        for (Qcow2Extension e : extensions) {
            if (e.type() == EXT_CRYPTO) {
                if (cryptMethod != CRYPT_LUKS) {
                    throw new CorruptImageException(resource, e.offset(), "CRYPTO header extension only expected "
                            + "with LUKS encryption method");
                }
                if (e.data().length != 16) {
                    throw new CorruptImageException(resource, e.offset(), "CRYPTO header extension size "
                            + e.data().length + ", but expected size 16");
                }
                long at = ByteBuffer.wrap(e.data()).getLong(0);
                if (at % cs != 0) {
                    throw new CorruptImageException(resource, e.offset(), "Encryption header offset '"
                            + Long.toUnsignedString(at) + "' is not a multiple of cluster size '" + cs + "'");
                }
            }
        }
        if (cryptMethod != 0 && cryptMethod != CRYPT_LUKS) {
            throw new CorruptImageException(resource, 32, "Unsupported encryption method "
                    + Integer.toUnsignedString(cryptMethod));
        }
        if (u32(refcountOrder) > 6) {
            throw new CorruptImageException(resource, 96, "Reference count entry width too large; may not exceed "
                    + "64 bits (refcount_order " + Integer.toUnsignedString(refcountOrder) + ")");
        }
        if (compressionType > 1) {
            throw new UnsupportedFeatureException(resource, Feature.COMPRESSION_TYPE, "compression type " + compressionType,
                    "Unknown compression type " + compressionType);
        }
        if ((compressionType != 0) != ((incompatible & INCOMPAT_COMPRESSION) != 0)) {
            throw new CorruptImageException(resource, 104, "compression type " + compressionType
                    + " does not match the compression type feature bit");
        }
        if ((incompatible & INCOMPAT_EXTL2) != 0 && clusterBits < 14) {
            throw new CorruptImageException(resource, 20, "Extended L2 entries are only supported with cluster "
                    + "sizes of at least 16384 bytes");
        }
        if ((incompatible & INCOMPAT_DATA_FILE) != 0 && dataFile.isEmpty() && !unnamedDataFile) {
            // QEMU's words: the data file's name can be given when opening (qemu-img amend -o data_file= leaves this)
            throw new CorruptImageException(resource, 72, "'data-file' is required for this image");
        }
        if ((autoclear & AUTOCLEAR_DATA_FILE_RAW) != 0 && (incompatible & INCOMPAT_DATA_FILE) == 0) {
            throw new CorruptImageException(resource, 88, "data-file-raw requires a data file");
        }
        if (size < 0) {
            throw new CorruptImageException(resource, 24, "Image size " + Long.toUnsignedString(size)
                    + " is too large");
        }

        // the active L1 table
        int l2Bits = clusterBits - ((incompatible & INCOMPAT_EXTL2) != 0 ? 4 : 3);
        if (u32(l1Size) > MAX_L1_BYTES / 8) {
            throw new ImageLimitException(resource, 36, "Active L1 table too large ("
                    + Integer.toUnsignedString(l1Size) + " entries)");
        }
        long needed = l1EntriesFor(size, clusterBits, l2Bits);
        if (needed > Integer.MAX_VALUE) {
            throw new ImageLimitException(resource, 24, "Image is too big (" + size + " bytes)");
        }
        if (l1Size < needed) {
            throw new CorruptImageException(resource, 36, "L1 table is too small (" + l1Size + " entries for "
                    + needed + " needed by the virtual size " + size + ")");
        }
        validateTable(resource, 40, "Active L1 table", l1TableOffset,
                Qcow2Checks.mul(resource, 36, l1Size, 8, "L1 table size"), cs, fileSize);
        if (l1Size > 0 && l1TableOffset == 0) {
            throw new CorruptImageException(resource, 40, "Active L1 table overlaps the header");
        }

        // the refcount table (not read on the read path, but its header fields must be sane)
        if (u32(refcountTableClusters) > MAX_REFTABLE_BYTES / cs) {
            throw new ImageLimitException(resource, 56, "Reference count table too large ("
                    + Integer.toUnsignedString(refcountTableClusters) + " clusters)");
        }
        validateTable(resource, 48, "Reference count table", refcountTableOffset,
                Qcow2Checks.mul(resource, 56, refcountTableClusters, cs, "refcount table size"), cs, Long.MAX_VALUE);

        // the snapshot table's start; its length is only known when it is read
        if (!forCheck && u32(nbSnapshots) > MAX_SNAPSHOTS) {
            throw new ImageLimitException(resource, 60, "Too many snapshots ("
                    + Integer.toUnsignedString(nbSnapshots) + " > " + MAX_SNAPSHOTS + ")");
        }
        if (!forCheck && nbSnapshots > 0) {
            validateTable(resource, 64, "Snapshot table", snapshotsOffset, 40L * nbSnapshots, cs, fileSize);
        }

        Optional<String> backingFile = Optional.empty();
        if (backingFileOffset != 0) {
            byte[] name = new byte[backingFileSize];
            b.get((int) backingFileOffset, name);
            backingFile = Optional.of(new String(name, StandardCharsets.UTF_8));
        }
        return new Qcow2Header(version, backingFileOffset, backingFileSize, clusterBits, size, cryptMethod, l1Size,
                l1TableOffset, refcountTableOffset, refcountTableClusters, nbSnapshots, snapshotsOffset, incompatible,
                compatible, autoclear, refcountOrder, headerLength, compressionType, extensions, backingFile,
                backingFormat, dataFile);
    }

    /**
     * QEMU's qcow2_validate_table: a table of {@code bytes} at {@code offset} is cluster aligned, ends
     * inside 2^63 (and 2^56), and here also inside the file when {@code fileSize} is known.
     */
    static void validateTable(String resource, long field, String name, long offset, long bytes, int clusterSize,
            long fileSize) throws ImageException {
        if (offset < 0 || offset >= MAX_HOST_OFFSET || !aligned(offset, clusterSize)) {
            throw new CorruptImageException(resource, field, name + " offset invalid ("
                    + Long.toUnsignedString(offset) + ": not cluster aligned or too large)");
        }
        if (Long.MAX_VALUE - bytes < offset) {
            throw new CorruptImageException(resource, field, name + " offset invalid (the table ends past 2^63)");
        }
        if (bytes > 0 && Qcow2Checks.add(resource, field, offset, bytes, name + " end") > fileSize) {
            throw new CorruptImageException(resource, field, name + " at " + offset + " (" + bytes
                    + " bytes) extends past the end of the file (" + fileSize + " bytes)");
        }
    }

    /**
     * Cluster 0 rewritten to name the backing file {@code file} ({@code null}: none) with the recorded
     * format {@code format} ({@code null}: none), laid out as QEMU's qcow2_update_header lays it out: the
     * fixed header as it is (unknown fields included), the backing format extension, the other
     * extensions (data file, encryption, feature names, bitmaps, then unknown ones in file order), the
     * end marker and the backing file name.
     *
     * @param cluster0 the current cluster 0, {@link #clusterSize()} bytes
     * @throws ImageLimitException if the name is longer than 1023 bytes or does not fit cluster 0
     */
    byte[] withBacking(byte[] cluster0, String resource, String file, String format) throws ImageException {
        byte[] name = file == null ? new byte[0] : file.getBytes(StandardCharsets.UTF_8);
        if (name.length > 1023) {
            throw new ImageLimitException(resource, 16, "backing file name is " + name.length
                    + " bytes long (at most 1023)");
        }
        ByteBuffer out = ByteBuffer.allocate(clusterSize()).order(ByteOrder.BIG_ENDIAN);
        out.put(0, cluster0, 0, headerLength);
        List<Qcow2Extension> kept = new ArrayList<>();
        if (file != null && format != null) {
            kept.add(new Qcow2Extension(EXT_BACKING_FORMAT, -1, format.getBytes(StandardCharsets.UTF_8)));
        }
        for (int type : new int[] {EXT_DATA_FILE, EXT_CRYPTO, EXT_FEATURE_NAMES, EXT_BITMAPS}) {
            extensions.stream().filter(e -> e.type() == type).forEach(kept::add);
        }
        extensions.stream().filter(e -> switch (e.type()) {
            case EXT_BACKING_FORMAT, EXT_DATA_FILE, EXT_CRYPTO, EXT_FEATURE_NAMES, EXT_BITMAPS -> false;
            default -> true;
        }).forEach(kept::add);
        long pos = headerLength;
        for (Qcow2Extension e : kept) {
            long next = pos + 8 + ((e.data().length + 7) & ~7L);
            if (next + 8 + name.length > clusterSize()) {
                throw new ImageLimitException(resource, pos, "header extensions and the backing file name do not "
                        + "fit the first cluster (" + clusterSize() + " bytes)");
            }
            out.putInt((int) pos, e.type()).putInt((int) pos + 4, e.data().length).put((int) pos + 8, e.data());
            pos = next;
        }
        pos += 8;
        if (pos + name.length > clusterSize()) {
            throw new ImageLimitException(resource, pos, "the backing file name does not fit the first cluster ("
                    + clusterSize() + " bytes)");
        }
        out.putLong(8, file == null ? 0 : pos).putInt(16, name.length).put((int) pos, name);
        return out.array();
    }
}
