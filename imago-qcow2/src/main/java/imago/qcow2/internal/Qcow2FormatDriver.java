package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Measurement;
import imago.api.StorageLocation;
import imago.api.spi.Confidence;
import imago.api.spi.CreateChecks;
import imago.api.spi.Dependency;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;

/** The qcow2 driver: recognises images by magic and version and opens, writes and creates them. */
public final class Qcow2FormatDriver implements FormatDriver {
    /** "QFI\xfb". */
    static final int MAGIC = 0x514649FB;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public Qcow2FormatDriver() {
    }

    @Override
    public String name() {
        return "qcow2";
    }

    @Override
    public int probeLength() {
        return 8;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        if (head.remaining() < 8) {
            return Confidence.NONE;
        }
        ByteBuffer be = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        int p = be.position();
        // QEMU accepts any version >= 2 when probing and rejects unknown ones when opening
        return be.getInt(p) == MAGIC && be.getInt(p + 4) >= 2 ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        return Qcow2Instance.open(storage, context);
    }

    /** {@inheritDoc} qemu-img refuses every qcow2 option before it makes the file. */
    @Override
    public void checkCreate(StorageLocation location, CreateOptions options) throws IOException {
        Qcow2Create.check(location.toString(), options);
    }

    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Qcow2Create.create(storage, options);
    }

    @Override
    public void create(Storage storage, CreateOptions options, List<Storage> createdFiles) throws IOException {
        Qcow2Create.create(storage, options, createdFiles.isEmpty() ? null : createdFiles.getFirst());
    }

    /** {@inheritDoc} As qemu-img 7.2's qcow2_measure ({@link Qcow2Measure}). */
    @Override
    public Optional<Measurement> measure(CreateOptions options, Image source) throws IOException {
        return Optional.of(Qcow2Measure.measure(options, source));
    }

    @Override
    public List<Dependency> createdFiles(CreateOptions options) {
        String dataFile = options.formatOptions().get("data_file");
        return dataFile == null ? List.of() : List.of(new Dependency.DataFile(dataFile));
    }

    /** qemu-img 7.2's order and defaults for qcow2. */
    @Override
    public SequencedMap<String, String> formattingOptions(CreateOptions options, String preallocation) {
        Map<String, String> o = options.formatOptions();
        SequencedMap<String, String> out = new LinkedHashMap<>();
        for (String k : Qcow2CreateSpec.ENCRYPT_OPTIONS) {
            String v = o.get(k);
            if (v != null) {
                out.put(k, v);
            }
        }
        String cs = o.getOrDefault("cluster_size", "65536");
        try {
            cs = Long.toString(Qcow2CreateSpec.parseSize(cs, "cluster_size")); // qemu prints sizes in bytes
        } catch (IllegalArgumentException e) {
            // shown as given; create reports it
        }
        out.put("cluster_size", cs);
        out.put("extended_l2", o.getOrDefault("extended_l2", "off"));
        String prealloc = o.getOrDefault("preallocation", preallocation);
        if (prealloc != null) {
            out.put("preallocation", prealloc);
        }
        out.put("compression_type", o.getOrDefault("compression_type", "zlib"));
        options.size().ifPresent(s -> out.put("size", Long.toString(s)));
        for (String k : List.of("compat", "backing_file", "backing_fmt", "data_file", "data_file_raw")) {
            String v = switch (k) {
                case "backing_file" -> o.getOrDefault(k, options.backingFile().orElse(null));
                case "backing_fmt" -> o.getOrDefault(k, options.backingFormat().orElse(null));
                default -> o.get(k);
            };
            if (v != null) {
                out.put(k, v);
            }
        }
        out.put("lazy_refcounts", o.getOrDefault("lazy_refcounts", "off"));
        out.put("refcount_bits", formattedNumber(o.getOrDefault("refcount_bits", "16")));
        return out;
    }

    /** A number option as qemu-img's Formatting line prints it: parsed ({@code 0x10} is 16), signed. */
    private static String formattedNumber(String value) {
        try {
            return Long.toString(CreateChecks.number("refcount_bits", value));
        } catch (IllegalArgumentException e) {
            return value; // refused with its message when the options are checked
        }
    }

    /**
     * The cache sizes, the internal snapshot to open ({@code imago.probe.Opener#snapshot}), the secret of an
     * encrypted image, the luks module's limits on its key slots' work, which reach the embedded LUKS header, and
     * QEMU's {@code lazy-refcounts} (whether refcounts are kept lazily while the image is open, whatever its bit says).
     */
    @Override
    public Set<String> openOptionNames() {
        return Set.of("l2-cache-size", "cache-size", "snapshot", Qcow2Crypto.KEY_SECRET, "pbkdf-max-iterations",
                "argon2-max-memory", "argon2-max-work", "lazy-refcounts");
    }

    @Override
    public Set<String> createOptionNames() {
        return Qcow2CreateSpec.OPTION_NAMES;
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }
}
