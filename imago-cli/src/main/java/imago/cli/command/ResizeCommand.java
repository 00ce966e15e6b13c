package imago.cli.command;

import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageLockedException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.cli.text.Sizes;
import imago.probe.Imago;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago resize}: changes an image's virtual size, as qemu-img resize does. */
@Command(name = "resize", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Changes the virtual size of FILE to SIZE, or by +SIZE or -SIZE (put '--' before a "
                + "negative one), as qemu-img resize does.",
            "Shrinking needs --shrink: the data past the new end is lost."})
final class ResizeCommand implements Callable<Integer> {
    private static final String SHRINK_WARNING = "Shrinking an image will delete all data beyond the shrunken "
            + "image's end. Before performing such an operation, make sure there is no important data there.";

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = "--shrink", description = "Allow shrinking the image.")
    private boolean shrink;

    @Option(names = "--preallocation", paramLabel = "MODE",
            description = "Preallocation of the new space when growing: off, metadata, falloc, full.")
    private String preallocation;

    @Option(names = "-q", description = "Quiet: do not print 'Image resized.'.")
    private boolean quiet;

    @Parameters(index = "0", paramLabel = "FILE", description = "The image.")
    private String file;

    @Parameters(index = "1", paramLabel = "[+|-]SIZE", description = "The new size, or the change of size.")
    private String size;

    ResizeCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        Preallocation prealloc = Preallocation.OFF;
        if (preallocation != null) {
            try {
                prealloc = Preallocation.parse(preallocation);
            } catch (IllegalArgumentException e) {
                throw new CliException(null, "Invalid preallocation mode '" + preallocation + "'");
            }
        }
        int relative = size.startsWith("+") ? 1 : size.startsWith("-") ? -1 : 0;
        long n;
        try {
            n = Sizes.parse(relative != 0 ? size.substring(1) : size);
        } catch (Sizes.SizeException e) {
            // qemu-img reads the size as a size option (without its sign): the option parser's words
            throw new CliException(null, e.problem() == Sizes.Problem.TOO_LARGE ? "Value '"
                    + size.substring(relative != 0 ? 1 : 0) + "' is out of range for parameter 'size'"
                    : "Parameter 'size' expects a non-negative number below 2^64\n"
                    + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                    + "and exabytes, respectively.");
        }
        try (Image image = open()) {
            if (session.probesFormat(file, format.name()) && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, session.fileName(file));
            }
            // qemu-img counts whole sectors: a raw file of 1000 bytes is 1024 bytes long for it
            long current = (image.size() + 511) & ~511L;
            long total = relative == 0 ? n : relative > 0 ? saturatedAdd(current, n) : current - n;
            if (total <= 0) {
                throw new CliException(null, "New image size must be positive");
            }
            if (total <= current && prealloc != Preallocation.OFF) {
                throw new CliException(null, "Preallocation can only be used for growing images");
            }
            if (total < current && !shrink) {
                // qemu-img's error, then its warning
                session.error("Use the --shrink option to perform a shrink operation.");
                session.error("warning: " + SHRINK_WARNING);
                return Cli.FAILED;
            }
            if (!image.supports(Feature.RESIZE)) {
                // qemu-img's words for a driver without truncate, which its checks of the size come before
                throw new CliException(null, "Image format driver does not support resize");
            }
            try {
                image.resize(total, prealloc);
            } catch (IllegalArgumentException e) {
                // a size the format cannot take (qcow2: not a multiple of 512), in the format's words
                throw new CliException(null, e.getMessage());
            } catch (UnsupportedFeatureException e) {
                switch (e.feature()) {
                    // qed's driver words it as QEMU's qed does; the block layer's words otherwise
                    case PREALLOCATION -> throw new CliException(null, e.detail().startsWith(
                            "Unsupported preallocation mode '") ? e.detail() : "Unsupported preallocation mode: "
                            + prealloc.qemuName());
                    // qemu-img's words: a qcow2 v2 image cannot hide its longer backing file's data
                    case ZERO_CLUSTERS -> throw new CliException(null, "Failed to zero out new clusters: Operation "
                            + "not supported");
                    // an inconsistent bitmap: qemu-img prints the reason alone (two lines)
                    case PERSISTENT_BITMAPS -> throw new CliException(null, e.detail());
                    // a format that only grows (qed): qemu-img prints the driver's reason alone
                    case RESIZE -> throw new CliException(null, e.detail());
                    default -> throw e;
                }
            }
        }
        if (!quiet) {
            session.out().println("Image resized.");
        }
        return Cli.OK;
    }

    private static long saturatedAdd(long a, long b) {
        long r = a + b;
        return r < a ? Long.MAX_VALUE : r;
    }

    /**
     * Opens the image to resize; resizing: a raw file's lock claims it, as qemu-img resize's does. QEMU probes before
     * it locks, so a probed raw file a holder keeps resizers out of (qemu-nbd) gets the probing warning first.
     */
    private Image open() throws IOException {
        try {
            return session.opener(file, format.name(), true).writable(true).resizing(true).open();
        } catch (IOException | IllegalArgumentException | UncheckedIOException e) {
            if (e instanceof ImageLockedException && !session.imageOpts() && session.probesFormat(file, format.name())
                    && probesRaw(Path.of(file))) {
                Arguments.warnProbedRaw(session, session.fileName(file));
            }
            throw OpenFailures.couldNotOpen(session, file, format.name(), e);
        }
    }

    private static boolean probesRaw(Path path) {
        try {
            return Imago.probe(path).equals("raw");
        } catch (IOException e) {
            return false; // the lock's refusal is the answer
        }
    }
}
