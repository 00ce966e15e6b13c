package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Writes a new, empty qcow2 image laid out as {@code qemu-img create} 7.2 lays it out: the header in
 * cluster 0, the refcount table in cluster 1, the first refcount block in cluster 2 and the L1 table
 * from cluster 3 (written only up to its last entry), followed, when the first refcount block does not cover
 * it, by the refcount blocks that do (and a larger refcount table if those need one), as QEMU places them.
 */
final class Qcow2Create {
    /** The {@code -o} names {@link #create} accepts. */
    static final Set<String> OPTION_NAMES = Set.of("backing_file", "backing_fmt", "cluster_size", "compat",
            "compression_type", "data_file", "data_file_raw", "extended_l2", "lazy_refcounts", "preallocation",
            "refcount_bits");

    /** The feature-name table QEMU 7.2 writes into v3 images: type, bit, name. */
    private static final Object[][] FEATURES = {
        {0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"}, {0, 3, "compression type"},
        {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"}, {2, 0, "bitmaps"}, {2, 1, "raw external data"},
    };

    private Qcow2Create() {
    }

    /**
     * Writes a new image for {@code options} to the empty {@code storage}.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     * @throws UnsupportedFeatureException for preallocation with an external data file (which needs the created
     *         data file: see the three-argument form)
     * @throws IOException if the storage cannot be written
     */
    static void create(Storage storage, CreateOptions options) throws IOException {
        create(storage, options, null);
    }

    /**
     * Writes a new image as {@link #create(Storage, CreateOptions)}; {@code data} is the external data file
     * the options name, created at the image's size, or {@code null}: preallocating an image with an external
     * data file needs it (the L2 entries point into it, as qemu-img creates them), and so does a raw data file,
     * which QEMU creates with metadata preallocation so that the metadata describes all of it.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     * @throws UnsupportedFeatureException for preallocation with an external data file that is not given
     * @throws IOException if the storage cannot be written
     */
    static void create(Storage storage, CreateOptions options, Storage data) throws IOException {
        String resource = storage.name();
        Map<String, String> o = options.formatOptions();
        for (String k : o.keySet()) {
            if (!OPTION_NAMES.contains(k)) {
                throw new IllegalArgumentException("Invalid parameter '" + k + "' for qcow2 (known: "
                        + new java.util.TreeSet<>(OPTION_NAMES) + ")");
            }
        }
        Preallocation prealloc = o.containsKey("preallocation") ? Preallocation.parse(o.get("preallocation"))
                : options.preallocation();
        String dataFile = o.get("data_file");
        boolean dataFileRaw = onOff(o, "data_file_raw");
        if (dataFileRaw && dataFile == null) {
            throw new IllegalArgumentException("data-file-raw requires data-file");
        }
        int version = switch (o.getOrDefault("compat", "1.1")) {
            case "0.10", "v2" -> 2;
            case "1.1", "v3" -> 3;
            default -> throw new IllegalArgumentException("Invalid compat version '" + o.get("compat")
                    + "' (expected 0.10 or 1.1)");
        };
        boolean extendedL2 = onOff(o, "extended_l2");
        boolean lazy = onOff(o, "lazy_refcounts");
        long cs = o.containsKey("cluster_size") ? parseSize(o.get("cluster_size"), "cluster_size") : 65536;
        if (cs < 512 || cs > (2 << 20) || Long.bitCount(cs) != 1) {
            throw new IllegalArgumentException("Cluster size must be a power of two between 512 and 2048k");
        }
        int clusterBits = Long.numberOfTrailingZeros(cs);
        long refcountBits = o.containsKey("refcount_bits") ? parseSize(o.get("refcount_bits"), "refcount_bits") : 16;
        if (refcountBits < 1 || refcountBits > 64 || Long.bitCount(refcountBits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        int compression = switch (o.getOrDefault("compression_type", "zlib")) {
            case "zlib" -> 0;
            case "zstd" -> 1;
            default -> throw new IllegalArgumentException("Invalid compression_type '" + o.get("compression_type")
                    + "' (expected zlib or zstd)");
        };
        if (version < 3) {
            if (lazy) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and above "
                        + "(use compat=1.1 or greater)");
            }
            if (refcountBits != 16) {
                throw new IllegalArgumentException("Different refcount widths than 16 bits require compatibility level "
                        + "1.1 or above (use compat=1.1 or greater)");
            }
            if (extendedL2) {
                throw new IllegalArgumentException("Extended L2 entries are only supported with compatibility level 1.1 "
                        + "and above (use compat=1.1 or greater)");
            }
            if (compression != 0) {
                throw new IllegalArgumentException("Compression type selection is only supported with compatibility "
                        + "level 1.1 and above (use compat=1.1 or greater)");
            }
        }
        if (extendedL2 && cs < 16384) {
            throw new IllegalArgumentException("Extended L2 entries are only supported with cluster sizes of at least "
                    + "16384 bytes");
        }
        String backingFile = o.containsKey("backing_file") ? o.get("backing_file") : options.backingFile().orElse(null);
        String backingFmt = o.containsKey("backing_fmt") ? o.get("backing_fmt") : options.backingFormat().orElse(null);
        if (backingFmt != null && backingFile == null) {
            throw new IllegalArgumentException("Backing format cannot be used without backing file");
        }
        if (dataFile != null && version < 3) {
            throw new IllegalArgumentException("External data files are only supported with compatibility level 1.1 "
                    + "and above (use compat=1.1 or greater)");
        }
        if (dataFileRaw && backingFile != null) {
            throw new IllegalArgumentException("Backing file and data-file-raw cannot be used at the same time");
        }
        if (dataFileRaw && prealloc == Preallocation.OFF && data != null) {
            // as QEMU's qcow2_co_create: a raw data file's metadata describes all of it
            prealloc = Preallocation.METADATA;
        }
        if (prealloc != Preallocation.OFF) {
            if (backingFile != null && !extendedL2) {
                throw new IllegalArgumentException("Backing file and preallocation can only be used at the same time "
                        + "if extended_l2 is on");
            }
            if (dataFile != null && data == null) {
                // qemu-img always creates the data file first; a driver caller that did not give it gets this
                throw new UnsupportedFeatureException(resource, Feature.PREALLOCATION, "qcow2 preallocation", "preallocating a qcow2 image "
                        + "with an external data file needs the created data file");
            }
        }
        if (options.size().isEmpty()) {
            throw new IllegalArgumentException("Image creation needs a size parameter");
        }
        long size = options.size().getAsLong();
        if (size > Long.MAX_VALUE - 511) {
            throw new IllegalArgumentException("Image size too large: " + size);
        }
        size = (size + 511) & ~511L;
        int refcountOrder = Long.numberOfTrailingZeros(refcountBits);
        int l2Bits = clusterBits - (extendedL2 ? 4 : 3);
        long l1Size = Qcow2Header.l1EntriesFor(size, clusterBits, l2Bits);
        if (l1Size * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new IllegalArgumentException("Could not resize image: Active L1 table too large");
        }
        long l1Clusters = Qcow2Checks.divCeil(l1Size * 8, cs);
        long refblockEntries = cs * 8 / refcountBits;
        // as QEMU, whose L1 table (allocated when the new image is truncated to its size) takes the clusters from 3
        // on, followed by the refcount blocks it needs when the first one does not cover it
        boolean moreBlocks = 3 + l1Clusters > refblockEntries;
        long used = moreBlocks ? 3 : 3 + l1Clusters;
        int headerLength = version >= 3 ? 112 : 72;

        ByteBuffer h = ByteBuffer.allocate((int) cs).order(ByteOrder.BIG_ENDIAN);
        h.putInt(0, Qcow2Header.MAGIC).putInt(4, version).putInt(20, clusterBits).putLong(24, size)
                .putInt(36, (int) l1Size).putLong(40, l1Size > 0 ? 3 * cs : 0).putLong(48, cs).putInt(56, 1);
        if (version >= 3) {
            long incompat = (compression != 0 ? Qcow2Header.INCOMPAT_COMPRESSION : 0)
                    | (extendedL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0)
                    | (dataFile != null ? Qcow2Header.INCOMPAT_DATA_FILE : 0);
            h.putLong(72, incompat).putLong(80, lazy ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0)
                    .putLong(88, dataFileRaw ? Qcow2Header.AUTOCLEAR_DATA_FILE_RAW : 0)
                    .putInt(96, refcountOrder).putInt(100, headerLength).put(104, (byte) compression);
        }
        int pos = headerLength;
        if (backingFmt != null) {
            pos = extension(h, pos, Qcow2Header.EXT_BACKING_FORMAT, backingFmt.getBytes(StandardCharsets.UTF_8));
        }
        if (dataFile != null) {
            pos = extension(h, pos, Qcow2Header.EXT_DATA_FILE, dataFile.getBytes(StandardCharsets.UTF_8));
        }
        if (version >= 3 && cs > 4096) {
            // QEMU leaves the feature-name table out of clusters of 4 KiB and less, to keep room for names
            byte[] table = new byte[FEATURES.length * Qcow2Extension.FEATURE_NAME_SIZE];
            for (int i = 0; i < FEATURES.length; i++) {
                int at = i * Qcow2Extension.FEATURE_NAME_SIZE;
                table[at] = (byte) (int) (Integer) FEATURES[i][0];
                table[at + 1] = (byte) (int) (Integer) FEATURES[i][1];
                byte[] name = ((String) FEATURES[i][2]).getBytes(StandardCharsets.US_ASCII);
                System.arraycopy(name, 0, table, at + 2, name.length);
            }
            pos = extension(h, pos, Qcow2Header.EXT_FEATURE_NAMES, table);
        }
        pos += 8; // the end-of-extensions entry: type 0, length 0
        if (backingFile != null) {
            byte[] name = backingFile.getBytes(StandardCharsets.UTF_8);
            if (name.length > 1023 || pos + name.length > cs) {
                throw new IllegalArgumentException("Backing file name too long");
            }
            h.putLong(8, pos).putInt(16, name.length).put(pos, name);
        }
        storage.write(h.clear(), 0);

        ByteBuffer reftable = ByteBuffer.allocate((int) cs).order(ByteOrder.BIG_ENDIAN).putLong(0, 2 * cs);
        storage.write(reftable, cs);
        Qcow2RefBlock block = new Qcow2RefBlock(new byte[(int) cs], refcountOrder);
        for (int i = 0; i < used; i++) {
            block.set(i, 1);
        }
        storage.write(ByteBuffer.wrap(block.bytes()), 2 * cs);
        if (moreBlocks) {
            Qcow2Refcounts refcounts = Qcow2Refcounts.open(storage, clusterBits, refcountOrder, cs, 1, storage.size());
            long first = refcounts.allocateRun((int) l1Clusters);
            if (first != 3) {
                throw new IllegalStateException(resource + ": the L1 table went to cluster " + first);
            }
            storage.write(ByteBuffer.allocate((int) (l1Size * 8)), 3 * cs);
            refcounts.sync();
            // a refcount table that had to grow replaced the one in cluster 1, which the header no longer names
            for (long c : refcounts.takeRetired()) {
                refcounts.decrement(c);
            }
            refcounts.sync();
        } else if (l1Size > 0) {
            storage.write(ByteBuffer.allocate((int) (l1Size * 8)), 3 * cs);
        }
        if (prealloc != Preallocation.OFF) {
            // as QEMU, which creates the image and then grows it with preallocation: the image above is complete
            // and consistent, and preallocation then allocates every cluster through the writer
            storage.sync();
            try (Qcow2Instance image = Qcow2Instance.open(storage, imago.api.spi.OpenContext.of(true))) {
                if (dataFile != null) {
                    image.attach(new imago.api.spi.Dependency.DataFile(dataFile), data);
                }
                image.preallocate(0, size, prealloc);
                image.flush();
                image.sync();
            }
        }
    }

    private static int extension(ByteBuffer h, int pos, int type, byte[] data) {
        if (pos + 8 + data.length + 16 > h.capacity()) {
            throw new IllegalArgumentException("header extensions do not fit the first cluster");
        }
        h.putInt(pos, type).putInt(pos + 4, data.length).put(pos + 8, data);
        return pos + 8 + ((data.length + 7) & ~7);
    }

    private static boolean onOff(Map<String, String> o, String key) {
        String v = o.get(key);
        if (v == null) {
            return false;
        }
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "true", "yes" -> true;
            case "off", "false", "no" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + key + "' expects 'on' or 'off', got '" + v
                    + "'");
        };
    }

    /** A qemu size: a number with an optional k/M/G suffix (powers of 1024). */
    static long parseSize(String v, String key) {
        String s = v.trim();
        long mult = 1;
        if (!s.isEmpty()) {
            char c = Character.toLowerCase(s.charAt(s.length() - 1));
            int shift = switch (c) {
                case 'b' -> 0;
                case 'k' -> 10;
                case 'm' -> 20;
                case 'g' -> 30;
                default -> -1;
            };
            if (shift >= 0) {
                mult = 1L << shift;
                s = s.substring(0, s.length() - 1);
            }
        }
        try {
            long n = Long.parseLong(s);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return Math.multiplyExact(n, mult);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a size, got '" + v + "'", e);
        }
    }
}
