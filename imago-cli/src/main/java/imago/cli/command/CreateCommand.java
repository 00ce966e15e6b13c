package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.cli.info.InfoReport;
import imago.cli.text.QemuOpts;
import imago.probe.Imago;
import imago.probe.Opener;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago create}: a new image, as {@code qemu-img create} makes it. */
@Command(name = "create", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Creates a new image of SIZE bytes (suffixes k, M, G, T, P, E; fractions like 1.5G), "
                + "or of its backing file's size.")
final class CreateCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The format of the new image (default: raw).")
    private String format = "raw";

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Format options, name=value[,name=value...] "
            + "(preallocation=off|metadata|falloc|full, size, backing_file, backing_fmt, and the format's own).")
    private List<String> options = new ArrayList<>();

    @Option(names = "-b", paramLabel = "BACKING", description = "The backing file to record.")
    private String backing;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "The backing file's format.")
    private String backingFormat;

    @Option(names = "-u", description = "Do not open the backing file (SIZE is then required).")
    private boolean unsafe;

    @Option(names = "-q", description = "Quiet: do not print the 'Formatting' line.")
    private boolean quiet;

    @Parameters(index = "0", arity = "0..1", paramLabel = "FILE", description = "The new image (replaced if it "
            + "exists).")
    private String file;

    @Parameters(index = "1", arity = "0..1", paramLabel = "SIZE", description = "The virtual size in bytes.")
    private String size;

    CreateCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        if (QemuOpts.asksForHelp(options)) {
            CreateOptionsHelp.print(session, format, file);
            return Cli.OK;
        }
        if (file == null) {
            session.error("Expecting image file name");
            session.err().println("Try '" + session.program() + " --help' for more information");
            return Cli.FAILED;
        }
        Path path = session.file(file);
        Arguments.installedFormat(file, format);
        if (Imago.describe(format).readOnly()) {
            throw new CliException(file, "Format driver '" + format + "' does not support image creation");
        }
        Map<String, String> opts;
        try {
            opts = QemuOpts.parse(options);
            CreateOptionTypes.check(format, opts);
        } catch (IllegalArgumentException e) {
            throw new CliException(file, e.getMessage());
        }
        OptionalLong bytes = OptionalLong.empty();
        String sizeOption = opts.remove("size");
        if (sizeOption != null) {
            bytes = OptionalLong.of(Arguments.sizeOption(file, sizeOption));
        }
        if (size != null) {
            bytes = OptionalLong.of(Arguments.size("image size", size));
        }
        FileOptions fileOptions = FileOptions.take(opts, file);
        Arguments.backingOptions(file, format, backing != null, backingFormat != null);
        String backingFile = opts.remove("backing_file");
        String backingFmt = opts.remove("backing_fmt");
        String preallocation = opts.remove("preallocation");
        if (backing != null) {
            backingFile = backing;
        }
        if (backingFormat != null) {
            backingFmt = backingFormat;
        }

        CreateOptions.Builder builder = CreateOptions.builder();
        // qemu-img reads the mode as the driver creates the image, after the "Formatting" line
        String badPreallocation = null;
        if (preallocation != null) {
            try {
                builder.preallocation(Preallocation.parse(preallocation));
            } catch (IllegalArgumentException e) {
                badPreallocation = preallocation;
            }
        }
        if (backingFile != null) {
            bytes = checkBacking(backingFile, backingFmt, bytes);
            builder.backingFile(backingFile);
        }
        if (backingFmt != null) { // given alone, the format answers for it (qcow2 and vmdk refuse it, qed ignores it)
            builder.backingFormat(backingFmt);
        }
        if (bytes.isEmpty()) {
            throw new CliException(file, "Image creation needs a size parameter");
        }
        builder.size(bytes.getAsLong());
        opts.forEach(builder::option);
        CreateOptions createOptions = builder.build();

        if (!quiet) {
            session.out().println(formattingLine(createOptions, preallocation, fileOptions));
            session.out().flush();
        }
        if (badPreallocation != null) {
            throw new CliException(file, badPreallocation(badPreallocation));
        }
        fileOptions.check(file);
        try {
            session.create(file, path, format, createOptions);
        } catch (ImageLimitException e) {
            throw new CliException(file, SizeLimits.create(format, createOptions));
        }
        return Cli.OK;
    }

    /** qemu-img's checks of a backing file; returns the size to use (the backing file's when none is given). */
    private OptionalLong checkBacking(String backingFile, String backingFmt, OptionalLong bytes) throws IOException {
        if (backingFile.isEmpty()) {
            throw new CliException(file, "Expected backing file name, got empty string");
        }
        if (backingFile.equals(file)) {
            throw new CliException(file, "Error: Trying to create an image with the same filename as the "
                    + "backing file");
        }
        if (unsafe) {
            return bytes;
        }
        // qemu-img opens the backing file relative to the new image, to check it and to take its size
        String full = InfoReport.combine(file, backingFile);
        Path backingPath = Path.of(full);
        // force-share, as qemu-img's open of the backing file for its size: an overlay of an image a running VM
        // writes is the usual external snapshot, and the new image never writes its backing file
        Opener opener = Imago.opener().path(backingPath).lock(false);
        if (backingFmt != null) {
            opener.format(backingFmt);
        }
        try {
            if (Files.isDirectory(backingPath)) { // QEMU opens it read-only: its file driver's check refuses it
                throw new CliException(full, "'file' driver requires '" + full + "' to be a regular file");
            }
            Session.checkOpenable(full, backingPath);
            try (Image b = opener.open()) {
                // qemu-img insists on -F so the format is recorded rather than probed on every open; a
                // format with no place to record it (cow) probes its backing file anyway
                if (backingFmt == null && recordsBackingFormat()) {
                    throw new CliException(file, "Backing file specified without backing format (detected format of "
                            + full + ": " + b.format() + "; give it with -F)");
                }
                return bytes.isPresent() ? bytes : OptionalLong.of(b.size());
            }
        } catch (CliException e) {
            if (e.file() == null || e.file().equals(file)) {
                throw e;
            }
            throw new CliException(file, e.getMessage() + "\nCould not open backing image.");
        } catch (IOException | IllegalArgumentException | UncheckedIOException e) {
            // QEMU's open error as it is, without img_open's "Could not open 'NAME'" (qemu-img create adds none)
            throw new CliException(file, OpenFailures.cause(session, full, backingFmt, e)
                    + "\nCould not open backing image.");
        } catch (RuntimeException e) {
            throw new CliException(file, Errors.describe(e, session, null) + "\nCould not open backing image.");
        }
    }

    private boolean recordsBackingFormat() {
        try {
            return Imago.describe(format).backingFormat();
        } catch (imago.api.UnknownFormatException e) {
            return true; // create itself reports the unknown format
        }
    }

    /**
     * qemu-img's message for a preallocation mode that is not one: the format's own parser's when the format lists
     * the option itself (qcow2), else that of the file layer below it.
     */
    private String badPreallocation(String mode) {
        List<String> own = CreateOptionsHelp.lines("create-options-" + format + ".txt");
        if (own != null && own.stream().anyMatch(l -> l.strip().startsWith("preallocation="))) {
            return "Parameter 'preallocation' does not accept value '" + mode + "'";
        }
        return "invalid parameter value: " + mode;
    }

    /** qemu-img's {@code Formatting 'FILE', fmt=FMT name=value...} line. */
    private String formattingLine(CreateOptions o, String preallocation, FileOptions fileOptions) throws IOException {
        StringBuilder sb = new StringBuilder("Formatting '").append(file).append("', fmt=").append(format);
        List<String> parts = new ArrayList<>();
        Imago.formattingOptions(format, o, preallocation).forEach((k, v) -> parts.add(k + "=" + QemuOpts.escape(v)));
        parts.addAll(fileOptions.formatting()); // the file's options come after the format's, as in qemu-img
        sb.append(' ').append(String.join(" ", parts));
        return sb.toString();
    }
}
