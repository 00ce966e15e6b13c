package imago.parallels.internal;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BlockTable;
import imago.api.spi.Confidence;
import imago.api.spi.CreateChecks;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.Set;

/**
 * The parallels driver: Parallels (Virtuozzo) expandable images, both magics, as QEMU 7.2 reads and writes them.
 * Stateless.
 *
 * <p>Create option ({@code -o}): {@code cluster_size} (default 1 MiB, rounded up to a sector as qemu-img rounds
 * it). {@code preallocation} (off, falloc, full) is accepted and changes nothing in the new file, as in qemu-img.
 */
public final class ParallelsFormatDriver implements FormatDriver {
    /** Create option: bytes per cluster. */
    static final String CLUSTER_SIZE = "cluster_size";
    static final long DEFAULT_CLUSTER_SIZE = 1 << 20;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public ParallelsFormatDriver() {
    }

    @Override
    public String name() {
        return "parallels";
    }

    /** None: QEMU's parallels driver has no {@code get_info}, so qemu-img's info shows no dirty flag. */
    @Override
    public boolean reportsDirtyFlag() {
        return false;
    }

    @Override
    public int probeLength() {
        return ParallelsHeader.LENGTH;
    }

    /** {@link Confidence#STRONG} for either magic with version 2 in a whole header (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        if (head.remaining() < ParallelsHeader.LENGTH) {
            return Confidence.NONE;
        }
        byte[] magic = new byte[16];
        head.get(head.position(), magic);
        int version = Integer.reverseBytes(head.getInt(head.position() + 16));
        boolean known = Arrays.equals(magic, ParallelsHeader.MAGIC) || Arrays.equals(magic, ParallelsHeader.MAGIC_EXT);
        return known && version == ParallelsHeader.VERSION ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a Parallels image; a writable open sets the in-use mark.
     *
     * @throws CorruptImageException if the header, the catalog or a cluster is damaged or lies past the end of the
     *         file, if a writable open finds the in-use mark (QEMU 7.2 refuses too: repair with check -r all) or
     *         clusters over the catalog or over each other
     * @throws imago.api.ImageLimitException if clusters, the catalog or the size exceed the limits
     * @throws imago.api.UnsupportedFeatureException for a format extension feature QEMU does not know
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        String name = storage.name();
        boolean writable = context.writable();
        if (writable && storage.readOnly()) {
            throw new ReadOnlyImageException(name, "cannot open a read-only storage for writing");
        }
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(ParallelsHeader.LENGTH); // cut short, it reads on as zeroes, as in QEMU
        storage.read(head, 0);
        ParallelsHeader header = ParallelsHeader.parse(head.flip(), name);
        if (writable && header.inUse() && !context.forCheck()) {
            throw new CorruptImageException(name, ParallelsHeader.IN_USE_AT, "parallels: Image was not closed "
                    + "correctly; cannot be opened read/write");
        }
        ParallelsInstance instance = new ParallelsInstance(storage, header, writable);
        long cluster = header.clusterSize();
        long dataEnd = header.dataOff() != 0 ? header.dataOff() * ParallelsHeader.SECTOR
                : (header.tableEnd() + ParallelsHeader.SECTOR - 1) / ParallelsHeader.SECTOR * ParallelsHeader.SECTOR;
        BlockTable table = instance.table();
        long[] hosts = new long[table.length()];
        int n = 0;
        for (int i = 0; i < table.length(); i++) {
            long host = table.hostOffset(i);
            if (host < 0) {
                continue;
            }
            // a cluster past the end of the file (a file cut short) reads as zeroes, as QEMU reads it; new clusters
            // go past the last one the catalog names, so a write never lands on it
            hosts[n++] = host;
            dataEnd = Math.max(dataEnd, host + cluster);
        }
        long extAt = header.extOff() * ParallelsHeader.SECTOR;
        if (header.extOff() != 0) {
            if (writable) {
                // QEMU ignores the extension when writing, and would put new clusters over it: imago goes past it
                dataEnd = Math.max(dataEnd, extAt + cluster);
            } else if (!context.forCheck()) {
                ParallelsExtension.check(storage, extAt, cluster, fileSize);
            }
        }
        if (writable && !context.forCheck()) {
            checkLayout(name, Arrays.copyOf(hosts, n), cluster, header.tableEnd());
        }
        instance.allocateFrom(dataEnd);
        if (writable) {
            instance.markInUse(true);
        }
        return instance;
    }

    /** Refuses clusters over the header and catalog or over each other: a write into one would change the other. */
    private static void checkLayout(String name, long[] hosts, long cluster, long tableEnd)
            throws CorruptImageException {
        Arrays.sort(hosts);
        for (int i = 0; i < hosts.length; i++) {
            if (hosts[i] < tableEnd || i > 0 && hosts[i] < hosts[i - 1] + cluster) {
                throw new CorruptImageException(name, hosts[i], "a cluster at offset " + hosts[i] + " overlaps "
                        + (hosts[i] < tableEnd ? "the header and catalog" : "the cluster at offset " + hosts[i - 1])
                        + "; refusing to write to this image");
            }
        }
    }

    /**
     * Writes a new image as qemu-img 7.2 does.
     *
     * @throws IllegalArgumentException if no size is given, the size is too large for the cluster size, an option
     *         is unknown or invalid, or a backing file is given
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        CreateChecks.knownOptionsOnly(options, "parallels", List.of(CLUSTER_SIZE));
        CreateChecks.noBackingFile(options, "parallels");
        Preallocation p = options.preallocation();
        if (p != Preallocation.OFF && p != Preallocation.FALLOC && p != Preallocation.FULL) {
            throw new IllegalArgumentException(CreateChecks.unsupportedPreallocation(p));
        }
        long requested = CreateChecks.size(options);
        long size = (requested + ParallelsHeader.SECTOR - 1) / ParallelsHeader.SECTOR * ParallelsHeader.SECTOR;
        long cluster = clusterSize(options);
        // a size that wraps negative when rounded up to a sector is as much too large (qemu-img's words)
        if (cluster == 0 || size < 0 || size / cluster >= 1L << 32) {
            throw new IllegalArgumentException("Image size is too large for this cluster size");
        }
        long entries = (size + cluster - 1) / cluster;
        if (entries > BlockTable.MAX_ENTRIES) {
            throw new IllegalArgumentException("a parallels image of " + size + " bytes in clusters of " + cluster
                    + " needs " + entries + " catalog entries, more than imago's limit of " + BlockTable.MAX_ENTRIES);
        }
        long tableClusters = (ParallelsHeader.LENGTH + entries * 4 + cluster - 1) / cluster;
        long dataSectors = tableClusters * cluster / ParallelsHeader.SECTOR;
        ByteBuffer first = ByteBuffer.allocate(ParallelsHeader.SECTOR);
        first.put(0, ParallelsHeader.create(size, cluster, entries, dataSectors), 0, ParallelsHeader.LENGTH);
        storage.write(first, 0);
        if (dataSectors > 1) {
            storage.writeZeroes(ParallelsHeader.SECTOR, (dataSectors - 1) * ParallelsHeader.SECTOR, false);
        }
    }

    /** The cluster size option in bytes, rounded up to a sector. */
    static long clusterSize(CreateOptions options) {
        String v = options.formatOptions().get(CLUSTER_SIZE);
        long bytes = v == null ? DEFAULT_CLUSTER_SIZE : parseSize(v);
        return (bytes + ParallelsHeader.SECTOR - 1) / ParallelsHeader.SECTOR * ParallelsHeader.SECTOR;
    }

    /** A qemu size: a number with an optional k/M/G/T suffix (powers of 1024), at most 2^31 - 1 bytes. */
    private static long parseSize(String v) {
        return CreateChecks.sizeOption(CLUSTER_SIZE, v, 't', Integer.MAX_VALUE, true);
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.of(CLUSTER_SIZE);
    }

    /** {@inheritDoc} qemu-img's order for parallels: size, cluster_size (in bytes, 1 MiB by default), preallocation. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        String v = options.formatOptions().get(CLUSTER_SIZE);
        out.put(CLUSTER_SIZE, Long.toString(v == null ? DEFAULT_CLUSTER_SIZE : parseSize(v)));
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }
}
