package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.Extent;
import imago.api.Image;
import imago.api.Measurement;
import imago.api.Preallocation;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * {@code qemu-img measure -O qcow2}, computed as QEMU 7.2's qcow2_measure does: the fully allocated size is the
 * guest size (whole clusters) plus the metadata a preallocated image needs (header, L2 and L1 tables, and the
 * refcount blocks and table that count all of it, found as a fixed point); the required size replaces the guest
 * size by the clusters the source's data touches (zero and unallocated ranges skipped; everything when the new
 * image has a backing file, or is preallocated in full). The bitmaps the source keeps are counted as allocated
 * in full, with their tables and directory entries.
 */
final class Qcow2Measure {
    private static final int L1_ENTRY = 8;
    private static final int REFTABLE_ENTRY = 8;
    private static final int BITMAP_TABLE_ENTRY = 8;
    private static final int BITMAP_DIR_ENTRY_FIXED = 24;

    private Qcow2Measure() {
    }

    /**
     * What qemu-img's qcow2 measure reads of the options, checked in its order and with its words, which are not
     * create's: it knows the compatibility levels only by their numbers ({@code 0.10}, {@code 1.1}), and does not
     * look at compression, lazy refcounts, data files or an encryption format other than LUKS.
     *
     * @param version 2 or 3
     * @param backingFile whether the new image has a backing file
     */
    record Spec(long clusterSize, boolean extendedL2, int version, long refcountBits, Preallocation preallocation,
            boolean backingFile) {
        static Spec parse(CreateOptions options) {
            Map<String, String> o = options.formatOptions();
            Qcow2CreateSpec.checkNames(o);
            boolean extendedL2 = Qcow2CreateSpec.onOff(o, "extended_l2");
            long cluster = o.containsKey("cluster_size")
                    ? Qcow2CreateSpec.parseSize(o.get("cluster_size"), "cluster_size") : 65536;
            Qcow2CreateSpec.checkClusterSize(cluster, extendedL2);
            int version = switch (o.getOrDefault("compat", "1.1")) {
                case "0.10" -> 2;
                case "1.1" -> 3;
                default -> throw new IllegalArgumentException("Invalid compatibility level: '" + o.get("compat") + "'");
            };
            long refcountBits = Qcow2CreateSpec.refcountBits(o);
            if (version < 3 && refcountBits != 16) {
                throw new IllegalArgumentException("Different refcount widths than 16 bits require compatibility level "
                        + "1.1 or above (use compat=1.1 or greater)");
            }
            Preallocation preallocation = options.preallocation();
            if (o.containsKey("preallocation")) {
                try {
                    preallocation = Preallocation.parse(o.get("preallocation"));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("invalid parameter value: " + o.get("preallocation"), e);
                }
            }
            boolean backing = o.containsKey("backing_file") || options.backingFile().isPresent();
            return new Spec(cluster, extendedL2, version, refcountBits, preallocation, backing);
        }
    }

    static Measurement measure(CreateOptions options, Image source) throws IOException {
        Spec spec = Spec.parse(options);
        long cluster = spec.clusterSize();
        long virtualSize;
        long required = 0;
        if (source == null) {
            if (options.size().isEmpty()) {
                throw new IllegalArgumentException("Either --size N or one filename must be specified.");
            }
            virtualSize = roundUp(options.size().getAsLong(), cluster);
        } else {
            long size = source.size();
            virtualSize = roundUp(size, cluster);
            if (spec.backingFile()) {
                // the new image's backing file may share nothing with the source: every cluster may be written
                required = virtualSize;
            } else {
                required = dataClusters(source, size, cluster);
            }
        }
        long l2Entry = spec.extendedL2() ? 16 : 8;
        long l2Tables = Qcow2Checks.divCeil(virtualSize / cluster, cluster / l2Entry);
        if (l2Tables * L1_ENTRY > Qcow2Header.MAX_L1_BYTES) {
            throw new IllegalArgumentException("The image size is too large (try using a larger cluster size)");
        }
        if (spec.preallocation() == Preallocation.FULL || spec.preallocation() == Preallocation.FALLOC) {
            required = virtualSize;
        }
        long fully = preallocatedSize(virtualSize, cluster, spec.refcountBits(), l2Entry);
        if ("luks".equals(options.formatOptions().get("encrypt.format"))) {
            // as qemu-img: the LUKS header's clusters come on top (measuring needs key-secret, as create does); any
            // other encryption is not measured
            Map<String, String> encryption = Qcow2CreateSpec.luksOptions(options.formatOptions());
            if (!encryption.containsKey("key-secret")) {
                throw new IllegalArgumentException("Parameter 'encrypt.key-secret' is required for cipher");
            }
            fully += roundUp(Qcow2Crypto.format("qcow2", "luks").headerLength(encryption), cluster);
        }
        OptionalLong bitmaps = spec.version() >= 3 && source != null && keepsBitmaps(source)
                ? OptionalLong.of(bitmapsSize(source, cluster)) : OptionalLong.empty();
        return new Measurement(fully - virtualSize + required, fully, bitmaps);
    }

    /**
     * The bytes of the clusters that hold the source's data: each data range counts from the start of its first
     * cluster to the end of its last, and the walk goes on at that end.
     */
    private static long dataClusters(Image source, long size, long cluster) throws IOException {
        long required = 0;
        for (long offset = 0; offset < size; ) {
            Extent e = source.extent(offset, size - offset);
            long n = e.length();
            if (!e.zero() && e.data() && e.present()) {
                n = roundUp(offset + n, cluster) - offset;
                required += offset % cluster + n;
            }
            offset += n;
        }
        return required;
    }

    /** The file size of an image of {@code virtualSize} with every cluster and table allocated. */
    static long preallocatedSize(long virtualSize, long cluster, long refcountBits, long l2Entry) {
        long aligned = roundUp(virtualSize, cluster);
        long meta = cluster; // the header
        long l2Entries = roundUp(aligned / cluster, cluster / l2Entry);
        meta += l2Entries * l2Entry;
        long l1Entries = roundUp(l2Entries * l2Entry / cluster, cluster / L1_ENTRY);
        meta += l1Entries * L1_ENTRY;
        meta += refcountMetadataSize((meta + aligned) / cluster, cluster, refcountBits);
        return meta + aligned;
    }

    /**
     * The bytes of the refcount blocks and table that count {@code clusters} clusters and themselves: the fixed
     * point of "blocks for everything counted so far, table clusters for those blocks".
     */
    static long refcountMetadataSize(long clusters, long cluster, long refcountBits) {
        long perTableCluster = cluster / REFTABLE_ENTRY;
        long perBlock = cluster * 8 / refcountBits;
        long table = 0;
        long blocks = 0;
        long n = 0;
        long last;
        do {
            last = n;
            blocks = Qcow2Checks.divCeil(clusters + table + blocks, perBlock);
            table = Qcow2Checks.divCeil(blocks, perTableCluster);
            n = clusters + blocks + table;
        } while (n != last);
        return (blocks + table) * cluster;
    }

    /** Whether the source keeps persistent dirty bitmaps: a qcow2 version 3 image. */
    private static boolean keepsBitmaps(Image source) throws IOException {
        return source.format().equals("qcow2") && "1.1".equals(source.info().formatSpecific().get("compat"));
    }

    /** Each bitmap allocated in full, its table, and the directory rounded up to whole clusters. */
    private static long bitmapsSize(Image source, long cluster) throws IOException {
        Map<String, Object> specific = source.info().formatSpecific();
        long size = 0;
        long directory = 0;
        if (specific.get("bitmaps") instanceof List<?> list) {
            for (Object o : list) {
                Map<?, ?> bitmap = (Map<?, ?>) o;
                long granularity = ((Number) bitmap.get("granularity")).longValue();
                String name = (String) bitmap.get("name");
                long bytes = Qcow2Checks.divCeil(Qcow2Checks.divCeil(source.size(), granularity), 8);
                long clusters = Qcow2Checks.divCeil(bytes, cluster);
                size += clusters * cluster + roundUp(clusters * BITMAP_TABLE_ENTRY, cluster);
                directory += roundUp(BITMAP_DIR_ENTRY_FIXED + name.getBytes(StandardCharsets.UTF_8).length, 8);
            }
        }
        return size + roundUp(directory, cluster);
    }

    private static long roundUp(long n, long unit) {
        return Qcow2Checks.divCeil(n, unit) * unit;
    }
}
