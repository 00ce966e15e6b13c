package imago.cow.internal;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The cow driver: UML's and QEMU's copy-on-write images, every on-disk variant (see the package
 * documentation). Stateless.
 *
 * <p>Create options ({@code -o}): {@code variant} = {@code qemu} (default) or {@code uml-v3};
 * {@code alignment} (uml-v3 only, a power of two from 512 to 1 MiB, default 512); {@code backing_mtime}
 * (seconds, recorded in the header as both tools did; default 0, as the driver cannot stat the backing
 * file itself). Open options: {@code cow.check-backing} = {@code off}, {@code warn} (default) or
 * {@code refuse}, UML's comparison of the backing file's size and mtime with the header, applied when
 * the opener reports them; {@code cow.sync-data} = {@code on} (default: sync the data before each bitmap
 * update that announces it, as QEMU did) or {@code off} (flush only).
 */
public final class CowFormatDriver implements FormatDriver {
    /** "MOOO" read big-endian. */
    static final int MAGIC = CowHeader.MAGIC;

    /** Create option: {@code qemu} (default, QEMU's 64-bit v2 layout) or {@code uml-v3}. */
    static final String VARIANT = "variant";
    /** Create option: the UML v3 alignment, a power of two (default 512). */
    static final String ALIGNMENT = "alignment";
    /** Create option: the backing file's mtime in seconds to record (default 0). */
    static final String BACKING_MTIME = "backing_mtime";
    /** Open option: {@code off} (default), {@code warn} or {@code refuse}, for a later backing check. */
    static final String CHECK_BACKING = "cow.check-backing";
    /**
     * Open option: {@code on} (default) syncs the data to stable media before the bitmap update that
     * announces it, as QEMU did ({@code bdrv_flush} of the file); {@code off} only flushes it to the
     * operating system, which survives a process crash but not a power loss.
     */
    static final String SYNC_DATA = "cow.sync-data";

    private static final int DEFAULT_ALIGNMENT = 512;
    private static final int MAX_CREATE_ALIGNMENT = 1 << 20;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public CowFormatDriver() {
    }

    @Override
    public String name() {
        return "cow";
    }

    /** The largest header, UML's "v3 broken" (4136 bytes): the variant is decided when opening. */
    @Override
    public int probeLength() {
        return CowHeaders.MAX_HEADER;
    }

    /** {@link Confidence#STRONG} for the magic and a known version (v1 in either byte order). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return CowHeaders.recognised(head) ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a cow image of any variant: decides the variant from the header and the file size, and loads
     * the bitmap.
     *
     * @throws imago.api.CorruptImageException if no variant's layout fits the header and the file, or
     *         several do
     * @throws imago.api.ImageLimitException if the bitmap is larger than 512 MiB
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IllegalArgumentException if the {@code cow.check-backing} or {@code cow.sync-data} option is
     *         invalid
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        CowInstance.CheckBacking check = checkBacking(context.options());
        boolean syncData = switch (context.options().getOrDefault(SYNC_DATA, "on")) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new IllegalArgumentException("Invalid value '" + context.options().get(SYNC_DATA)
                    + "' for " + SYNC_DATA + " (expected on or off)");
        };
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate((int) Math.min(CowHeaders.MAX_HEADER, fileSize));
        storage.read(head, 0);
        CowHeader header = CowHeaders.detect(head.flip(), fileSize, storage.name());
        return CowInstance.open(storage, header, context.writable(), check, syncData);
    }

    private static CowInstance.CheckBacking checkBacking(Map<String, String> options) {
        String v = options.get(CHECK_BACKING);
        if (v == null) {
            return CowInstance.CheckBacking.WARN; // a copied backing file changes its mtime: warn, don't refuse
        }
        return switch (v) {
            case "off" -> CowInstance.CheckBacking.OFF;
            case "warn" -> CowInstance.CheckBacking.WARN;
            case "refuse" -> CowInstance.CheckBacking.REFUSE;
            default -> throw new IllegalArgumentException("Invalid value '" + v + "' for " + CHECK_BACKING
                    + " (expected off, warn or refuse)");
        };
    }

    /**
     * Writes a new cow image: QEMU's v2 layout as 64-bit x86 builds wrote it ({@code variant=qemu}, the
     * size rounded up to whole sectors, the file as long as header and bitmap, as QEMU left it) or UML's
     * v3 ({@code variant=uml-v3}, the file extended sparsely to the end of the data area, as UML does).
     *
     * @throws IllegalArgumentException if no size is given, an option is unknown or invalid, the backing
     *         name does not fit the variant's field, or preallocation is {@code falloc} or {@code full}
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        for (String key : options.formatOptions().keySet()) {
            if (!createOptionNames().contains(key)) {
                throw new IllegalArgumentException("Invalid parameter '" + key + "' for format cow (known: "
                        + "variant, alignment, backing_mtime)");
            }
        }
        long size = options.size().orElseThrow(() -> new IllegalArgumentException(
                "Image creation needs a size parameter"));
        if (options.preallocation() != Preallocation.OFF && options.preallocation() != Preallocation.METADATA) {
            throw new IllegalArgumentException("Unsupported preallocation mode for cow: "
                    + options.preallocation().qemuName() + " (off and metadata are supported)");
        }
        // cow headers have no field for a backing format, so a given one (qemu-img 7.2 users pass -F
        // with -b) is not recorded: on open the backing file is probed, as QEMU and UML always did
        Map<String, String> o = options.formatOptions();
        String variant = o.getOrDefault(VARIANT, "qemu").toLowerCase(Locale.ROOT);
        long mtime = mtime(o.get(BACKING_MTIME));
        String backing = options.backingFile().orElse("");
        CowHeader header = switch (variant) {
            case "qemu" -> {
                if (o.containsKey(ALIGNMENT)) {
                    throw new IllegalArgumentException("the alignment option applies only to variant=uml-v3");
                }
                CowFields.nameBytes(backing, CowHeaderQemuV2.NAME_LENGTH);
                if (size > Long.MAX_VALUE - CowFields.SECTOR) {
                    throw new IllegalArgumentException("Image size " + size + " is too large");
                }
                yield new CowHeaderQemuV2(false, backing, mtime, CowFields.roundUp(size, CowFields.SECTOR),
                        CowFields.SECTOR);
            }
            case "uml-v3" -> {
                if (backing.isEmpty()) {
                    // UML reads a v3 header whose name starts with four zero bytes as "v3 broken"
                    throw new IllegalArgumentException("variant=uml-v3 needs a backing file");
                }
                CowFields.nameBytes(backing, CowHeaderUmlV3.NAME_LENGTH);
                yield new CowHeaderUmlV3(false, backing, mtime, size, CowFields.SECTOR, alignment(o.get(ALIGNMENT)));
            }
            default -> throw new IllegalArgumentException("Invalid cow variant '" + o.get(VARIANT)
                    + "' (expected qemu or uml-v3)");
        };
        if (CowFields.ceilDiv(header.sectors(), 8) > CowInstance.MAX_BITMAP_BYTES
                || header.size() > Long.MAX_VALUE - header.dataOffset()) {
            throw new IllegalArgumentException("Image size " + size + " is too large for a cow image (at most "
                    + (CowInstance.MAX_BITMAP_BYTES * 8 * CowFields.SECTOR) + " bytes)");
        }
        ByteBuffer buf = ByteBuffer.allocate(header.headerLength());
        header.writeTo(buf);
        storage.write(buf, 0);
        long bitmapEnd = header.bitmapOffset() + header.bitmapLength();
        if (options.preallocation() == Preallocation.METADATA && header.bitmapLength() > 0) {
            storage.writeZeroes(header.bitmapOffset(), header.bitmapLength(), false);
        }
        long end = header instanceof CowHeaderUmlV3 ? header.dataOffset() + header.size() : bitmapEnd;
        if (storage.size() < end) {
            storage.resize(end, Preallocation.OFF);
        }
    }

    private static long mtime(String value) {
        if (value == null) {
            return 0;
        }
        try {
            long v = Long.parseLong(value.trim());
            if (v < 0 || v > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException("backing_mtime " + value + " does not fit 32 unsigned bits");
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Invalid backing_mtime '" + value + "' (expected seconds)", e);
        }
    }

    private static int alignment(String value) {
        if (value == null) {
            return DEFAULT_ALIGNMENT;
        }
        int a;
        try {
            a = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Invalid alignment '" + value + "'", e);
        }
        if (a < CowFields.SECTOR || a > MAX_CREATE_ALIGNMENT || Integer.bitCount(a) != 1) {
            throw new IllegalArgumentException("Invalid alignment " + value + ": it must be a power of two from 512 to "
                    + MAX_CREATE_ALIGNMENT);
        }
        return a;
    }

    /** imago's own switches: whether the backing file's size and mtime are checked, whether data writes sync. */
    @Override
    public Set<String> openOptionNames() {
        return Set.of(CHECK_BACKING, SYNC_DATA);
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.of(VARIANT, ALIGNMENT, BACKING_MTIME);
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }

    /** cow headers have no field for it: backing files are probed, as QEMU and UML did. */
    @Override
    public boolean recordsBackingFormat() {
        return false;
    }
}
