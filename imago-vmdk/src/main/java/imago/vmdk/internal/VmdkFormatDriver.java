package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Confidence;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.LongSupplier;

/**
 * The vmdk driver: VMware virtual disks as QEMU 7.2 reads and writes them. An image is either a sparse file that
 * holds its own descriptor (monolithicSparse, streamOptimized) or a descriptor file naming extent files (flat,
 * sparse, zero, VMFS), which the probe module opens through the {@link imago.api.OpenGate}. Stateless.
 */
public final class VmdkFormatDriver implements FormatDriver {
    /** QEMU probes with 2048 bytes. */
    static final int PROBE_LENGTH = 2048;
    /** "COWD", the ESX vmfsSparse magic, as the first four bytes read big-endian. */
    static final int COWD_MAGIC = 0x434F5744;
    /** The createTypes QEMU opens from a descriptor file. */
    static final Set<String> DESCRIPTOR_TYPES = Set.of("monolithicFlat", "vmfs", "vmfsSparse", "seSparse",
            "twoGbMaxExtentSparse", "twoGbMaxExtentFlat");

    private final LongSupplier cids;
    private final long splitSize;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public VmdkFormatDriver() {
        this(() -> ThreadLocalRandom.current().nextLong());
    }

    /** A driver whose new CIDs come from {@code cids} (tests make them reproducible). */
    VmdkFormatDriver(LongSupplier cids) {
        this(cids, VmdkCreate.SPLIT_SIZE);
    }

    /**
     * A driver whose new CIDs come from {@code cids} and whose split subformats cut extent files of
     * {@code splitSize} bytes instead of 2 GiB (the conformance kit's images are too small to reach 2 GiB).
     *
     * @throws IllegalArgumentException unless {@code splitSize} is a positive multiple of the 64 KiB grain
     */
    VmdkFormatDriver(LongSupplier cids, long splitSize) {
        this.cids = Objects.requireNonNull(cids, "cids");
        if (splitSize <= 0 || splitSize % (VmdkCreate.GRAIN_SECTORS * VmdkDescriptor.SECTOR) != 0) {
            throw new IllegalArgumentException("split size " + splitSize + " is not a positive number of grains");
        }
        this.splitSize = splitSize;
    }

    @Override
    public String name() {
        return "vmdk";
    }

    @Override
    public int probeLength() {
        return PROBE_LENGTH;
    }

    /**
     * {@link Confidence#STRONG} for the {@code KDMV} or {@code COWD} magic, or a descriptor: after comment lines
     * and lines of spaces, a line {@code version=1}, {@code 2} or {@code 3} (QEMU's test, quirks included: an empty
     * line before it fails).
     */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (b.remaining() < 4) {
            return Confidence.NONE;
        }
        int magic = b.getInt(b.position());
        if (magic == VmdkSparseHeader.MAGIC || magic == COWD_MAGIC) {
            return Confidence.STRONG;
        }
        int p = b.position();
        int end = b.limit();
        while (p < end) {
            byte c = b.get(p);
            if (c == '#') {
                while (p < end && b.get(p) != '\n') {
                    p++;
                }
                p++;
                continue;
            }
            if (c == ' ') {
                while (p < end && b.get(p) == ' ') {
                    p++;
                }
                if (p < end && b.get(p) == '\r') {
                    p++;
                }
                if (p == end || b.get(p) != '\n') {
                    return Confidence.NONE;
                }
                p++;
                continue;
            }
            return startsWithVersion(b, p, end) ? Confidence.STRONG : Confidence.NONE;
        }
        return Confidence.NONE;
    }

    private static boolean startsWithVersion(ByteBuffer b, int p, int end) {
        byte[] prefix = "version=".getBytes(StandardCharsets.US_ASCII);
        if (end - p < prefix.length + 2) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (b.get(p + i) != prefix[i]) {
                return false;
            }
        }
        byte v = b.get(p + prefix.length);
        if (v < '1' || v > '3') {
            return false;
        }
        byte after = b.get(p + prefix.length + 1);
        return after == '\n' || after == '\r' && end - p >= prefix.length + 3 && b.get(p + prefix.length + 2) == '\n';
    }

    /**
     * Opens a monolithic sparse or stream image, or a descriptor file (whose extents are attached by the caller).
     *
     * @throws CorruptImageException if the header, footer, tables or descriptor are damaged
     * @throws ImageLimitException if a descriptor or a table is larger than the limits
     * @throws UnsupportedFeatureException for a version, createType or extent kind imago does not read
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        boolean writable = context.writable();
        if (writable && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        String resource = storage.name();
        long fileSize = storage.size();
        if (fileSize < 4) {
            throw new CorruptImageException(resource, 0, "File is too small, not a valid image");
        }
        ByteBuffer head = ByteBuffer.allocate(4);
        storage.read(head, 0);
        int magic = head.flip().getInt(0);
        if (magic == COWD_MAGIC) {
            throw new UnsupportedFeatureException(resource, Feature.OTHER, "COWD image without descriptor",
                    "a COWD (vmfsSparse) extent is opened through the descriptor that names it");
        }
        if (magic != VmdkSparseHeader.MAGIC) {
            VmdkDescriptor d = readDescriptor(storage, 0, fileSize);
            return described(storage, d, writable, context.forCheck());
        }
        boolean forCheck = context.forCheck();
        VmdkSparseFiles.Governing g = VmdkSparseFiles.header(storage, writable, forCheck);
        VmdkSparseHeader h = g.header();
        if (h.capacity() == 0 && h.descriptorOffset() != 0) {
            // a sparse header that only carries a descriptor file
            long at = h.descriptorOffset() * VmdkDescriptor.SECTOR;
            return described(storage, readDescriptor(storage, at, fileSize - at), writable, forCheck);
        }
        if (h.descriptorOffset() == 0) {
            throw new CorruptImageException(resource, g.at() + 28, "the sparse file has no embedded descriptor "
                    + "(it is an extent of a descriptor file; open that instead)");
        }
        long at = h.descriptorOffset() * VmdkDescriptor.SECTOR;
        int length = (int) Math.min(h.descriptorSize() * VmdkDescriptor.SECTOR, fileSize - at);
        ByteBuffer text = ByteBuffer.allocate(length);
        storage.read(text, at);
        VmdkDescriptor d = VmdkDescriptor.parse(resource, at, text.flip());
        VmdkSparseExtent extent = VmdkSparseFiles.open(storage, writable, forCheck);
        return VmdkInstance.monolithic(storage, d, extent, writable, cids);
    }

    private VmdkInstance described(Storage storage, VmdkDescriptor d, boolean writable, boolean forCheck)
            throws IOException {
        if (!DESCRIPTOR_TYPES.contains(d.createType())) {
            throw new UnsupportedFeatureException(storage.name(), Feature.OTHER, "createType " + d.createType(),
                    "Unsupported image type '" + d.createType() + "'");
        }
        if (d.extents().isEmpty()) {
            throw new CorruptImageException(storage.name(), d.base(), "the descriptor lists no extents");
        }
        return VmdkInstance.described(storage, d, writable, forCheck, cids);
    }

    /** Reads the descriptor text of {@code length} bytes at {@code at}; larger than the limit is refused unread. */
    private static VmdkDescriptor readDescriptor(Storage storage, long at, long length) throws IOException {
        if (length > VmdkDescriptor.MAX_BYTES) {
            throw new ImageLimitException(storage.name(), at, "the descriptor of " + length
                    + " bytes is larger than the limit of " + VmdkDescriptor.MAX_BYTES + " bytes");
        }
        ByteBuffer text = ByteBuffer.allocate((int) length);
        storage.read(text, at);
        return VmdkDescriptor.parse(storage.name(), at, text.flip());
    }

    /**
     * Creates a monolithic image (sparse or stream), which needs no other file.
     *
     * @throws IllegalArgumentException if the subformat needs extent files (see
     *         {@link #create(Storage, CreateOptions, List)}), or an option is invalid
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        create(storage, options, List.of());
    }

    /**
     * Creates an image as qemu-img 7.2 does ({@code -o subformat, adapter_type, hwversion, toolsversion, compat6,
     * zeroed_grain}, a parent through {@code backing_file} with its CID in {@code backing_cid}); the extent files
     * {@link #createdFiles(StorageLocation, CreateOptions)} names are given, created and open, in that order.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid, or a combination QEMU refuses
     */
    @Override
    public void create(Storage storage, CreateOptions options, List<Storage> createdFiles) throws IOException {
        Objects.requireNonNull(storage, "storage");
        VmdkCreate.Plan plan = VmdkCreate.plan(fileName(storage.location()), options, splitSize);
        if (createdFiles.size() != plan.extentFiles().size()) {
            throw new IllegalArgumentException("the " + plan.subformat().qemuName + " subformat keeps its data in "
                    + plan.extentFiles().size() + " extent files, but " + createdFiles.size() + " were given");
        }
        VmdkCreate.write(storage, createdFiles, plan, cids.getAsLong() & 0xFFFF_FFFFL);
    }

    /**
     * The extent files of the split and flat subformats, named after the image as qemu-img names them; none with
     * metadata preallocation, which qemu-img refuses only after it made the image's file (left empty) and before any
     * extent file: {@link #create} refuses it then.
     */
    @Override
    public List<Dependency> createdFiles(StorageLocation location, CreateOptions options) {
        if (options.preallocation() == Preallocation.METADATA) {
            // the other options are refused here all the same, before the file exists, as qemu-img refuses them
            VmdkCreate.plan(fileName(location), new CreateOptions(options.size(), Preallocation.OFF,
                    options.backingFile(), options.backingFormat(), options.formatOptions(), options.secrets()),
                    splitSize);
            return List.of();
        }
        VmdkCreate.Plan plan = VmdkCreate.plan(fileName(location), options, splitSize);
        return plan.extentFiles().keySet().stream().<Dependency>map(n -> new Dependency.ExtentFile(n, true)).toList();
    }

    private static String fileName(StorageLocation location) {
        String name = location.name();
        return name.substring(name.lastIndexOf('/') + 1);
    }

    /** qemu-img's "Formatting" line: its option order, compat6 and hwversion always shown. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        Map<String, String> o = options.formatOptions();
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        putIfGiven(out, o, VmdkCreate.ADAPTER_TYPE);
        options.backingFile().or(() -> Optional.ofNullable(o.get("backing_file")))
                .ifPresent(b -> out.put("backing_file", b));
        options.backingFormat().or(() -> Optional.ofNullable(o.get("backing_fmt")))
                .ifPresent(f -> out.put("backing_fmt", f));
        out.put(VmdkCreate.COMPAT6, o.getOrDefault(VmdkCreate.COMPAT6, "off"));
        out.put(VmdkCreate.HWVERSION, o.getOrDefault(VmdkCreate.HWVERSION, "undefined"));
        putIfGiven(out, o, VmdkCreate.TOOLSVERSION);
        putIfGiven(out, o, VmdkCreate.SUBFORMAT);
        putIfGiven(out, o, VmdkCreate.ZEROED_GRAIN);
        String prealloc = o.getOrDefault("preallocation", preallocation);
        if (prealloc != null) {
            out.put("preallocation", prealloc);
        }
        return out;
    }

    private static void putIfGiven(SequencedMap<String, String> out, Map<String, String> o, String key) {
        String v = o.get(key);
        if (v != null) {
            out.put(key, v);
        }
    }

    @Override
    public Set<String> createOptionNames() {
        return VmdkCreate.OPTION_NAMES;
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }
}
