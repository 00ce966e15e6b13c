package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Measurement;
import imago.api.UnsupportedFeatureException;
import imago.cli.text.Json;
import imago.cli.text.QemuOpts;
import imago.cli.text.Sizes;
import imago.probe.Imago;
import imago.probe.Opener;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago measure}: how large a new image would be, empty or holding a source image, as qemu-img measure. */
@Command(name = "measure", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Prints how large a new image of the output format would be: for --size N, or holding "
                + "FILE's data, as qemu-img measure computes it (required and fully allocated sizes, and the "
                + "space of FILE's persistent bitmaps)."})
final class MeasureCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Mixin
    private OutputOption output;

    @Option(names = "-O", paramLabel = "OUTPUT_FMT", description = "The new image's format (default: raw).")
    private String outputFormat = "raw";

    @Option(names = "-o", paramLabel = "OPTIONS", description = "The new image's format options, as for create.")
    private List<String> options = new ArrayList<>();

    @Option(names = "--size", paramLabel = "N", description = "Measure an empty image of N bytes instead of FILE.")
    private String size;

    @Option(names = "-l", paramLabel = "SNAPSHOT", description = "Measure FILE's internal snapshot (a name, or "
            + "snapshot.id=ID / snapshot.name=NAME).")
    private String snapshot;

    @Mixin
    private ForceShareOption forceShare;

    @Parameters(arity = "0..1", paramLabel = "FILE", description = "The image whose data the new image would hold.")
    private String file;

    MeasureCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        boolean json = output.json();
        CreateOptions createOptions = createOptions();
        // qemu-img measure's checks, in its order
        if (file == null && (format.name() != null || snapshot != null)) {
            throw new CliException(null, "--image-opts, -f, and -l require a filename argument.");
        }
        if (file != null && size != null) {
            throw new CliException(null, "--size N cannot be used together with a filename.");
        }
        if (file == null && size == null) {
            throw new CliException(null, "Either --size N or one filename must be specified.");
        }
        Measurement m;
        if (file == null) {
            m = measure(createOptions, null);
        } else {
            Opener opener = session.opener(file, format.name(), false).lock(!forceShare.given());
            if (snapshot != null) {
                opener.snapshot(snapshotName(snapshot));
            }
            // qemu-img opens the source before it looks at the output format
            try (Image source = open(opener)) {
                m = measure(createOptions, source);
            }
        }
        session.out().print(json ? json(m) : human(m));
        return 0;
    }

    /** The source, or qemu-img's words: a snapshot that cannot be loaded ({@link OpenFailures#snapshotNotLoaded}). */
    private Image open(Opener opener) throws IOException {
        try {
            return opener.open();
        } catch (IOException e) {
            CliException notLoaded = snapshot != null ? OpenFailures.snapshotNotLoaded(e) : null;
            throw notLoaded != null ? notLoaded : OpenFailures.couldNotOpen(session, file, format.name(), e);
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            throw OpenFailures.couldNotOpen(session, file, format.name(), e);
        }
    }

    private CreateOptions createOptions() {
        Map<String, String> opts;
        try {
            opts = QemuOpts.parse(options);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        }
        CreateOptions.Builder builder = CreateOptions.builder();
        if (size != null) {
            try {
                builder.size(Sizes.parse(size));
            } catch (Sizes.SizeException e) {
                // qemu-img measure's two lines
                throw new CliException(null, "Invalid image size specified. You may use k, M, G, T, P or E suffixes "
                        + "for" + Session.NEXT_REPORT + "kilobytes, megabytes, gigabytes, terabytes, petabytes "
                        + "and exabytes.");
            }
        }
        // preallocation stays among the format's options: qemu-img's qcow2 measure reads it in its own order and
        // words, raw's and luks's ignore it
        String backingFile = opts.remove("backing_file");
        if (backingFile != null) {
            builder.backingFile(backingFile);
        }
        String backingFormat = opts.remove("backing_fmt");
        if (backingFormat != null) {
            builder.backingFormat(backingFormat);
        }
        opts.remove("size");
        opts.forEach(builder::option);
        return builder.build();
    }

    private Measurement measure(CreateOptions createOptions, Image source) throws IOException {
        Arguments.installedFormat(null, outputFormat);
        if (Imago.describe(outputFormat).readOnly()) {
            throw new CliException(null, "Format driver '" + outputFormat + "' does not support image creation");
        }
        try {
            CreateOptionTypes.check(outputFormat, QemuOpts.parse(options));
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage() + Session.NEXT_REPORT + "Invalid options for file format '"
                    + outputFormat + "'");
        }
        try {
            return Imago.measure(outputFormat, createOptions, source);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        } catch (UnsupportedFeatureException e) {
            // qemu-img's words, about the driver rather than a file
            throw new CliException(null, "Block driver '" + outputFormat + "' does not support size measurement");
        }
    }

    /** {@code -l}: a bare name, or qemu's {@code snapshot.id=} / {@code snapshot.name=} option string. */
    private static String snapshotName(String spec) {
        for (String part : spec.split(",")) {
            if (part.startsWith("snapshot.id=")) {
                return part.substring("snapshot.id=".length());
            }
            if (part.startsWith("snapshot.name=")) {
                return part.substring("snapshot.name=".length());
            }
        }
        return spec;
    }

    private static String human(Measurement m) {
        StringBuilder sb = new StringBuilder();
        sb.append("required size: ").append(m.required()).append('\n');
        sb.append("fully allocated size: ").append(m.fullyAllocated()).append('\n');
        m.bitmaps().ifPresent(b -> sb.append("bitmaps size: ").append(b).append('\n'));
        return sb.toString();
    }

    private static String json(Measurement m) {
        Map<String, Object> fields = new LinkedHashMap<>();
        m.bitmaps().ifPresent(b -> fields.put("bitmaps", b));
        fields.put("required", m.required());
        fields.put("fully-allocated", m.fullyAllocated());
        return Json.pretty(fields) + "\n";
    }
}
