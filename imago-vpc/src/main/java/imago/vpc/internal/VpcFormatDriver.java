package imago.vpc.internal;

import imago.api.CreateOptions;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Confidence;
import imago.api.spi.CreateChecks;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.Set;
import java.util.UUID;

/**
 * The vpc driver: VHD images (Microsoft Virtual PC, Virtual Server, Hyper-V, Azure), fixed, dynamic and
 * differencing, under qemu-img's format name. Stateless.
 *
 * <p>Probing sees the footer copy that starts dynamic and differencing disks; a fixed disk starts with guest data
 * and probes as raw, as it does for qemu-img (open it with the format named). Create options ({@code -o}):
 * {@code subformat} = {@code dynamic} (default) or {@code fixed}; {@code force_size} = {@code off} (default: the
 * size is rounded up to a CHS geometry, as Virtual PC sizes disks) or {@code on} (the size as given, 512-byte
 * aligned: what Azure needs with {@code subformat=fixed} and a whole number of MiB). Open option
 * {@code force_size_calc} = {@code chs} or {@code current_size} overrides how the virtual size is read (QEMU's
 * option of the same name).
 */
public final class VpcFormatDriver implements FormatDriver {
    /** Create option: {@code dynamic} or {@code fixed}. */
    static final String SUBFORMAT = "subformat";
    /** Create option: keep the size as given instead of rounding it to a CHS geometry. */
    static final String FORCE_SIZE = "force_size";
    /** Open option: {@code chs} or {@code current_size}. */
    static final String FORCE_SIZE_CALC = "force_size_calc";
    /** The create options, in the order messages list them. */
    private static final List<String> CREATE_OPTIONS = List.of(SUBFORMAT, FORCE_SIZE);

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public VpcFormatDriver() {
    }

    @Override
    public String name() {
        return "vpc";
    }

    @Override
    public int probeLength() {
        return 8;
    }

    /** {@link Confidence#STRONG} for the footer cookie {@code conectix} at offset 0 (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return head.remaining() >= 8 && head.getLong(head.position()) == VpcFields.FOOTER_COOKIE ? Confidence.STRONG
                : Confidence.NONE;
    }

    /**
     * Opens a fixed, dynamic or differencing VHD.
     *
     * @throws imago.api.CorruptImageException if the footer, the header or the BAT is damaged or lies outside
     *         the file (with QEMU's wording where QEMU refuses too)
     * @throws imago.api.ImageLimitException if the image is larger than 2040 GiB or its tables exceed imago's limits
     * @throws ReadOnlyImageException if writing is asked of a read-only storage
     * @throws IllegalArgumentException if the {@code force_size_calc} option is invalid
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        String calc = context.options().get(FORCE_SIZE_CALC);
        VpcFooter.SizeCalc sizeCalc = calc == null ? VpcFooter.SizeCalc.AUTO : switch (calc) {
            case "chs" -> VpcFooter.SizeCalc.CHS;
            case "current_size" -> VpcFooter.SizeCalc.CURRENT_SIZE;
            default -> throw new IllegalArgumentException("Invalid size calculation mode: '" + calc + "'");
        };
        return VpcOpener.open(storage, context.writable(), sizeCalc);
    }

    /**
     * Writes a new VHD as qemu-img 7.2 does (see {@link VpcCreate}), with the current time and a random unique id.
     *
     * @throws IllegalArgumentException if no size is given, the size is over 2040 GiB, an option is unknown or
     *         invalid, a backing file is given, or preallocation is metadata (falloc and full are
     *         accepted and make the same file as off, as in qemu-img)
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        CreateChecks.knownOptionsOnly(options, "vpc", CREATE_OPTIONS);
        CreateChecks.noBackingFile(options, "vpc");
        CreateChecks.fileLayerPreallocation(options);
        long size = CreateChecks.size(options);
        Map<String, String> o = options.formatOptions();
        boolean fixed = CreateChecks.oneOf(o, SUBFORMAT, "dynamic", "fixed").equals("fixed");
        boolean forceSize = CreateChecks.onOff(o, FORCE_SIZE, false);
        VpcCreate.create(storage, VpcCreate.plan(storage.name(), size, forceSize), fixed, VpcCreate.now(), UUID.randomUUID());
    }

    /** How the virtual size is computed ({@code force_size_calc}), as QEMU's vpc driver takes it. */
    @Override
    public Set<String> openOptionNames() {
        return Set.of(FORCE_SIZE_CALC);
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.copyOf(CREATE_OPTIONS);
    }

    /** {@inheritDoc} qemu-img's order for vpc: size, subformat, force_size. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        for (String key : new String[] {SUBFORMAT, FORCE_SIZE}) {
            String v = options.formatOptions().get(key);
            if (v != null) {
                out.put(key, v);
            }
        }
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }
}
