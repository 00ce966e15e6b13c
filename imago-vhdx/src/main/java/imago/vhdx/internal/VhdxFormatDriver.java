package imago.vhdx.internal;

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
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.Set;
import java.util.UUID;

/**
 * The vhdx driver: Microsoft Hyper-V VHDX images, fixed, dynamic and differencing, under qemu-img's format name.
 * Stateless.
 *
 * <p>Create options ({@code -o}), as qemu-img's: {@code subformat} = {@code dynamic} (default) or {@code fixed};
 * {@code block_size} (0, the default, picks 8 to 64 MiB by the size); {@code log_size} (default 1 MiB);
 * {@code block_state_zero} = {@code on} (default: unwritten blocks are marked zero) or {@code off}.
 */
public final class VhdxFormatDriver implements FormatDriver {
    static final String SUBFORMAT = "subformat";
    static final String BLOCK_SIZE = "block_size";
    static final String LOG_SIZE = "log_size";
    static final String BLOCK_STATE_ZERO = "block_state_zero";
    /** The create options, in the order messages list them. */
    private static final List<String> CREATE_OPTIONS = List.of(SUBFORMAT, BLOCK_SIZE, LOG_SIZE, BLOCK_STATE_ZERO);
    /**
     * The source of a new image's first header sequence number, made on the first create: a {@code SecureRandom}
     * sets up the security providers (~10 ms), which every command would otherwise pay when the driver is loaded.
     */
    private static final class SequenceSource {
        static final SecureRandom INSTANCE = new SecureRandom();
    }

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public VhdxFormatDriver() {
    }

    @Override
    public String name() {
        return "vhdx";
    }

    @Override
    public int probeLength() {
        return 8;
    }

    /** {@link Confidence#STRONG} for the file type identifier {@code vhdxfile} at offset 0 (QEMU's probe). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        if (head.remaining() < 8) {
            return Confidence.NONE;
        }
        byte[] sig = new byte[8];
        head.duplicate().get(sig);
        return Arrays.equals(sig, VhdxFields.FILE_SIGNATURE) ? Confidence.STRONG : Confidence.NONE;
    }

    /**
     * Opens a VHDX, replaying its log first when it has one and the open is writable.
     *
     * @throws imago.api.CorruptImageException if a header, region table, the log, the metadata or the BAT is
     *         damaged or lies outside the file
     * @throws ReadOnlyImageException if writing is asked of a read-only storage, or the image has a log to replay
     *         and the open is read-only
     * @throws imago.api.UnsupportedFeatureException if a required region or metadata item is unknown
     * @throws IOException if the storage cannot be read
     */
    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(context, "context");
        if (context.writable() && storage.readOnly()) {
            throw new ReadOnlyImageException(storage.name(), "cannot open a read-only storage for writing");
        }
        return VhdxOpener.open(storage, context.writable(), context.forCheck());
    }

    /**
     * Writes a new VHDX as qemu-img 7.2 does (see {@link VhdxCreate}), with random GUIDs.
     *
     * @throws IllegalArgumentException if no size is given, the size is 0 or over 64 TiB, an option is unknown or
     *         invalid, a backing file is given, or preallocation is metadata (falloc and full are
     *         accepted and make the same file as off, as in qemu-img)
     * @throws IOException if the storage cannot be written
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Objects.requireNonNull(storage, "storage");
        Objects.requireNonNull(options, "options");
        CreateChecks.knownOptionsOnly(options, "vhdx", CREATE_OPTIONS);
        CreateChecks.noBackingFile(options, "vhdx");
        CreateChecks.fileLayerPreallocation(options);
        long size = CreateChecks.size(options);
        if (size == 0) {
            // qemu-img writes a 64 MiB BAT for no blocks at all; a disk of no bytes is no use
            throw new IllegalArgumentException("imago does not create VHDX images of 0 bytes");
        }
        Map<String, String> o = options.formatOptions();
        boolean fixed = CreateChecks.oneOf(o, SUBFORMAT, "dynamic", "fixed").equals("fixed");
        VhdxCreate.Plan plan = VhdxCreate.plan(size, parseSize(o.getOrDefault(BLOCK_SIZE, "0"), BLOCK_SIZE),
                parseSize(o.getOrDefault(LOG_SIZE, "1M"), LOG_SIZE), fixed,
                CreateChecks.onOff(o, BLOCK_STATE_ZERO, true));
        VhdxCreate.create(storage, plan, UUID::randomUUID, SequenceSource.INSTANCE.nextInt() & 0xFFFF_FFFFL);
    }

    /** A qemu size: a number with an optional k/M/G/T suffix (powers of 1024). */
    static long parseSize(String v, String key) {
        return CreateChecks.sizeOption(key, v, 't', Long.MAX_VALUE, true);
    }

    @Override
    public Set<String> createOptionNames() {
        return Set.copyOf(CREATE_OPTIONS);
    }

    /** {@inheritDoc} qemu-img's order for vhdx: size, log_size, block_size, then subformat and block_state_zero. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        Map<String, String> o = options.formatOptions();
        SequencedMap<String, String> out = new LinkedHashMap<>();
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        out.put(LOG_SIZE, bytes(o.getOrDefault(LOG_SIZE, "1048576"), LOG_SIZE));
        out.put(BLOCK_SIZE, bytes(o.getOrDefault(BLOCK_SIZE, "0"), BLOCK_SIZE));
        for (String key : new String[] {SUBFORMAT, BLOCK_STATE_ZERO}) {
            String v = o.get(key);
            if (v != null) {
                out.put(key, v);
            }
        }
        if (preallocation != null) {
            out.put("preallocation", preallocation);
        }
        return out;
    }

    private static String bytes(String v, String key) {
        try {
            return Long.toString(parseSize(v, key));
        } catch (IllegalArgumentException e) {
            return v; // shown as given; create reports it
        }
    }
}
