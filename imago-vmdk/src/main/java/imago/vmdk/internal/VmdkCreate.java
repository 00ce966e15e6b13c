package imago.vmdk.internal;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.spi.CreateChecks;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;

/**
 * New images, laid out byte for byte as qemu-img 7.2 lays them out (only the random CID differs): the options, the
 * extent files a subformat needs and their names, the sparse extent layout, and the descriptor.
 */
final class VmdkCreate {
    static final String SUBFORMAT = "subformat";
    static final String ADAPTER_TYPE = "adapter_type";
    static final String HWVERSION = "hwversion";
    static final String TOOLSVERSION = "toolsversion";
    static final String COMPAT6 = "compat6";
    static final String ZEROED_GRAIN = "zeroed_grain";
    /**
     * The parent's CID, which the probe module reads from the backing image (its info's {@code cid}) for formats
     * that take this option; not one of qemu-img's, which opens the parent itself.
     */
    static final String BACKING_CID = "backing_cid";
    static final Set<String> OPTION_NAMES = Set.of(SUBFORMAT, ADAPTER_TYPE, HWVERSION, TOOLSVERSION, COMPAT6,
            ZEROED_GRAIN, BACKING_CID, "backing_file", "backing_fmt", "preallocation");
    /** The split subformats' extent size: 2 GiB (tests split smaller, through {@link VmdkFormatDriver}'s). */
    static final long SPLIT_SIZE = 0x8000_0000L;
    /** The grain size QEMU creates: 128 sectors (64 KiB). */
    static final int GRAIN_SECTORS = 128;
    static final int GTES_PER_GT = 512;
    /**
     * The largest image of a sparse subformat: 2^32 grain table entries less one table, 64 KiB each. qemu-img 7.2
     * counts the entries in 32 bits: past this it writes a sparse extent with no grain directory (writes fail, check
     * fails, or the open refuses its L1 size) and, for the split subformats, descriptors without extents or hundreds
     * of millions of extent files; imago refuses these sizes before it makes any file.
     */
    static final long MAX_SPARSE_SIZE = (0x1_0000_0000L - GTES_PER_GT) * GRAIN_SECTORS * VmdkDescriptor.SECTOR;
    /** The sectors a sparse image keeps for its descriptor. */
    static final int DESCRIPTOR_SECTORS = 20;

    private VmdkCreate() {
    }

    /** The subformats qemu-img creates, by their option names (case-sensitive, as QEMU parses them). */
    enum Subformat {
        MONOLITHIC_SPARSE("monolithicSparse", false, false, false),
        MONOLITHIC_FLAT("monolithicFlat", true, false, false),
        TWO_GB_MAX_EXTENT_SPARSE("twoGbMaxExtentSparse", false, true, false),
        TWO_GB_MAX_EXTENT_FLAT("twoGbMaxExtentFlat", true, true, false),
        STREAM_OPTIMIZED("streamOptimized", false, false, true);

        final String qemuName;
        final boolean flat;
        final boolean split;
        final boolean compressed;

        Subformat(String qemuName, boolean flat, boolean split, boolean compressed) {
            this.qemuName = qemuName;
            this.flat = flat;
            this.split = split;
            this.compressed = compressed;
        }

        static Subformat parse(String name) {
            for (Subformat s : values()) {
                if (s.qemuName.equals(name)) {
                    return s;
                }
            }
            // qemu-img's words (monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat and
            // streamOptimized are the subformats)
            throw new IllegalArgumentException("invalid parameter value: " + name);
        }
    }

    /**
     * What to create.
     *
     * @param subformat the subformat
     * @param size the virtual size, rounded up to whole sectors
     * @param adapterType {@code ddb.adapterType}
     * @param hwVersion {@code ddb.virtualHWVersion}
     * @param toolsVersion {@code ddb.toolsVersion}
     * @param zeroedGrain whether sparse extents get zeroed-grain entries
     * @param backing the parent's name, as given
     * @param parentCid the parent's CID, or {@link VmdkDescriptor#NO_PARENT}
     * @param prefix the image's file name up to its last dot (extent files are named after it)
     * @param postfix the image's file name from its last dot on ("" without one)
     * @param splitSize the size of each extent file but the last of a split subformat ({@link #SPLIT_SIZE})
     */
    record Plan(Subformat subformat, long size, String adapterType, String hwVersion, String toolsVersion,
            boolean zeroedGrain, Optional<String> backing, long parentCid, String prefix, String postfix,
            long splitSize) {

        /** The extent files besides the image, with their sizes in bytes: none for monolithic subformats. */
        SequencedMap<String, Long> extentFiles() {
            SequencedMap<String, Long> out = new LinkedHashMap<>();
            if (!subformat.flat && !subformat.split) {
                return out;
            }
            if (!subformat.split) {
                out.put(prefix + "-flat" + postfix, size);
                return out;
            }
            long done = 0;
            for (int i = 1; done < size; i++) {
                long n = Math.min(splitSize, size - done);
                out.put(String.format(Locale.ROOT, "%s-%c%03d%s", prefix, subformat.flat ? 'f' : 's', i, postfix), n);
                done += n;
            }
            return out;
        }
    }

    /**
     * Reads the options of a new image named {@code fileName} (the last part of its path).
     *
     * @throws IllegalArgumentException for an unknown option or value, a size of 0 (which qemu-img takes, but no one
     *         opens), or a combination QEMU refuses
     */
    static Plan plan(String fileName, CreateOptions options, long splitSize) {
        Map<String, String> o = options.formatOptions();
        for (String key : o.keySet()) {
            if (!OPTION_NAMES.contains(key)) {
                throw new IllegalArgumentException("Invalid parameter '" + key + "' for format vmdk (known: "
                        + new TreeSet<>(OPTION_NAMES) + ")");
            }
        }
        long size = options.size().orElseThrow(() -> new IllegalArgumentException(
                "Image creation needs a size parameter"));
        if (size > VmdkDescriptor.MAX_SECTORS * VmdkDescriptor.SECTOR) {
            throw new IllegalArgumentException("Image size " + size + " is too large for vmdk");
        }
        if (size == 0) {
            // qemu-img writes an extent line of 0 sectors, which QEMU then refuses to open (or, for the flat
            // subformats, opens without extents and fails on), as imago refuses it: no use in making the file
            throw new IllegalArgumentException("Image size 0 is too small for vmdk: an empty vmdk cannot be opened");
        }
        size = (size + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR * VmdkDescriptor.SECTOR;
        if (options.preallocation() == Preallocation.METADATA) {
            throw new IllegalArgumentException("Unsupported preallocation mode: metadata");
        }
        Optional<String> backingFormat = options.backingFormat().or(() -> Optional.ofNullable(o.get("backing_fmt")));
        if (backingFormat.isPresent() && !backingFormat.get().equals("vmdk")) {
            throw new IllegalArgumentException("backing_file must be a vmdk image");
        }
        Optional<String> backing = options.backingFile().or(() -> Optional.ofNullable(o.get("backing_file")));
        String adapter = o.getOrDefault(ADAPTER_TYPE, "ide");
        if (!Set.of("ide", "buslogic", "lsilogic", "legacyESX").contains(adapter)) {
            throw new IllegalArgumentException("invalid parameter value: " + adapter); // qemu-img's words
        }
        boolean compat6 = CreateChecks.onOff(o, COMPAT6, false);
        String hw = o.get(HWVERSION);
        if ("undefined".equals(hw)) {
            hw = null;
        }
        if (compat6) {
            if (hw != null) {
                throw new IllegalArgumentException("compat6 cannot be enabled with hwversion set");
            }
            hw = "6";
        }
        String tools = o.getOrDefault(TOOLSVERSION, "2147483647");
        Subformat subformat = Subformat.parse(o.getOrDefault(SUBFORMAT, "monolithicSparse"));
        if (size > MAX_SPARSE_SIZE && subformat != Subformat.MONOLITHIC_FLAT) {
            throw new IllegalArgumentException("Image size " + size + " is too large for vmdk " + subformat.qemuName
                    + ": at most " + MAX_SPARSE_SIZE + " bytes (256 TiB - 32 MiB), past which qemu-img 7.2 writes "
                    + "extents it cannot use");
        }
        boolean zeroed = CreateChecks.onOff(o, ZEROED_GRAIN, false);
        if (subformat.flat && backing.isPresent()) {
            throw new IllegalArgumentException("Flat image can't have backing file");
        }
        if (subformat.flat && zeroed) {
            throw new IllegalArgumentException("Flat image can't enable zeroed grain");
        }
        long parentCid = VmdkDescriptor.NO_PARENT;
        if (backing.isPresent()) {
            String cid = o.get(BACKING_CID);
            if (cid == null) {
                throw new IllegalArgumentException("Failed to read parent CID: the backing file is not a vmdk image "
                        + "(or its CID was not given as " + BACKING_CID + ")");
            }
            try {
                parentCid = Long.parseLong(cid.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("Invalid backing_cid '" + cid + "'", e);
            }
            if (parentCid < 0 || parentCid > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException("Invalid backing_cid " + cid + ": not 32 unsigned bits");
            }
            text(backing.get(), "backing_file");
        }
        text(hw == null ? "4" : hw, HWVERSION);
        text(tools, TOOLSVERSION);
        int dot = fileName.lastIndexOf('.');
        String prefix = dot < 0 ? fileName : fileName.substring(0, dot);
        String postfix = dot < 0 ? "" : fileName.substring(dot);
        return new Plan(subformat, size, adapter, hw == null ? "4" : hw, tools, zeroed, backing, parentCid, prefix,
                postfix, splitSize);
    }

    /** A value that goes into the descriptor between quotes: no quote, no control character. */
    private static void text(String value, String what) {
        if (value.isEmpty() && !what.equals(TOOLSVERSION) || value.chars().anyMatch(c -> c == '"' || c < 0x20
                || c == 0x7f)) {
            throw new IllegalArgumentException("Invalid " + what + " '" + value + "': it goes into the descriptor "
                    + "in quotes");
        }
    }

    /**
     * Writes the image: {@code main} is the image file, {@code extents} the files of {@link Plan#extentFiles()} in
     * order (created empty by the caller).
     */
    static void write(Storage main, List<Storage> extents, Plan plan, long cid) throws IOException {
        Subformat sf = plan.subformat();
        List<String> lines = new ArrayList<>();
        if (!sf.flat && !sf.split) {
            initSparse(main, plan.size(), sf.compressed, plan.zeroedGrain());
            lines.add(extentLine(sf, plan.size(), plan.prefix() + plan.postfix()));
        } else {
            int i = 0;
            for (Map.Entry<String, Long> e : plan.extentFiles().entrySet()) {
                Storage s = extents.get(i++);
                if (sf.flat) {
                    initFlat(s, e.getValue());
                } else {
                    s.resize(0, Preallocation.OFF);
                    initSparse(s, e.getValue(), false, plan.zeroedGrain());
                }
                lines.add(extentLine(sf, e.getValue(), e.getKey()));
            }
        }
        byte[] text = descriptor(plan, cid, lines).getBytes(StandardCharsets.UTF_8);
        if (!sf.flat && !sf.split) {
            if (text.length > DESCRIPTOR_SECTORS * VmdkDescriptor.SECTOR) {
                throw new IllegalArgumentException("the descriptor (" + text.length + " bytes, with the backing file "
                        + "name) does not fit the " + DESCRIPTOR_SECTORS + " sectors a sparse image has for it");
            }
            main.write(ByteBuffer.wrap(text), VmdkDescriptor.SECTOR);
        } else {
            main.write(ByteBuffer.wrap(text), 0);
            main.resize(text.length, Preallocation.OFF);
        }
    }

    private static String extentLine(Subformat sf, long bytes, String name) {
        long sectors = (bytes + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
        return sf.flat ? "RW " + sectors + " FLAT \"" + name + "\" 0\n"
                : "RW " + sectors + " SPARSE \"" + name + "\"\n";
    }

    /** A flat extent: the file at its size, its first block written (as QEMU's file driver allocates it). */
    private static void initFlat(Storage s, long bytes) throws IOException {
        s.resize(0, Preallocation.OFF);
        s.resize(bytes, Preallocation.OFF);
        int first = (int) Math.min(bytes, 4096);
        if (first > 0) {
            s.write(ByteBuffer.allocate(first), 0);
        }
    }

    /**
     * QEMU's sparse extent of {@code bytes}: 64 KiB grains, 512 entries per table, the descriptor's 20 sectors from
     * sector 1, the redundant directory and its tables, the directory and its tables, grains from the next grain
     * boundary (the file ends there).
     */
    static void initSparse(Storage s, long bytes, boolean compress, boolean zeroedGrain) throws IOException {
        long capacity = bytes / VmdkDescriptor.SECTOR;
        long grains = (capacity + GRAIN_SECTORS - 1) / GRAIN_SECTORS;
        long gtSectors = (GTES_PER_GT * 4L + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
        long gtCount = (grains + GTES_PER_GT - 1) / GTES_PER_GT;
        long gdSectors = (gtCount * 4 + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR;
        long descriptorOffset = 1;
        long descriptorSize = DESCRIPTOR_SECTORS;
        long rgd = descriptorOffset + descriptorSize;
        long gd = rgd + gdSectors + gtSectors * gtCount;
        long overhead = (gd + gdSectors + gtSectors * gtCount + GRAIN_SECTORS - 1) / GRAIN_SECTORS * GRAIN_SECTORS;
        int version = compress ? 3 : zeroedGrain ? 2 : 1;
        int flags = VmdkSparseHeader.FLAG_RGD | VmdkSparseHeader.FLAG_NL_DETECT
                | (compress ? VmdkSparseHeader.FLAG_COMPRESSED | VmdkSparseHeader.FLAG_MARKERS : 0)
                | (zeroedGrain ? VmdkSparseHeader.FLAG_ZERO_GRAIN : 0);
        VmdkSparseHeader h = new VmdkSparseHeader(version, flags, capacity, GRAIN_SECTORS, descriptorOffset,
                descriptorSize, GTES_PER_GT, rgd, gd, overhead, 0, VmdkSparseHeader.NEWLINE_CHECK,
                compress ? VmdkSparseHeader.COMPRESS_DEFLATE : VmdkSparseHeader.COMPRESS_NONE);
        ByteBuffer header = ByteBuffer.allocate(VmdkSparseHeader.SIZE);
        h.writeTo(header);
        s.write(header.flip(), 0);
        s.resize(overhead * VmdkDescriptor.SECTOR, Preallocation.OFF);
        ByteBuffer dir = ByteBuffer.allocate(Math.toIntExact(gdSectors * VmdkDescriptor.SECTOR))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < gtCount; i++) {
            dir.putInt((int) (rgd + gdSectors + i * gtSectors));
        }
        s.write(dir.clear(), rgd * VmdkDescriptor.SECTOR);
        dir.clear();
        for (long i = 0; i < gtCount; i++) {
            dir.putInt((int) (gd + gdSectors + i * gtSectors));
        }
        s.write(dir.clear(), gd * VmdkDescriptor.SECTOR);
    }

    /** QEMU's descriptor template. */
    static String descriptor(Plan plan, long cid, List<String> extentLines) {
        int heads = plan.adapterType().equals("ide") ? 16 : 255;
        long cylinders = plan.size() / (63L * heads * VmdkDescriptor.SECTOR);
        StringBuilder sb = new StringBuilder();
        sb.append("# Disk DescriptorFile\n");
        sb.append("version=1\n");
        sb.append("CID=").append(Long.toHexString(cid)).append('\n');
        sb.append("parentCID=").append(Long.toHexString(plan.parentCid())).append('\n');
        sb.append("createType=\"").append(plan.subformat().qemuName).append("\"\n");
        plan.backing().ifPresent(b -> sb.append("parentFileNameHint=\"").append(b).append('"'));
        sb.append('\n');
        sb.append("# Extent description\n");
        extentLines.forEach(sb::append);
        sb.append('\n');
        sb.append("# The Disk Data Base\n");
        sb.append("#DDB\n");
        sb.append('\n');
        sb.append("ddb.virtualHWVersion = \"").append(plan.hwVersion()).append("\"\n");
        sb.append("ddb.geometry.cylinders = \"").append(cylinders).append("\"\n");
        sb.append("ddb.geometry.heads = \"").append(heads).append("\"\n");
        sb.append("ddb.geometry.sectors = \"63\"\n");
        sb.append("ddb.adapterType = \"").append(plan.adapterType()).append("\"\n");
        sb.append("ddb.toolsVersion = \"").append(plan.toolsVersion()).append("\"\n");
        return sb.toString();
    }
}
