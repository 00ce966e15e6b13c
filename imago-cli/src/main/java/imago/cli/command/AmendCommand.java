package imago.cli.command;

import imago.api.Image;
import imago.api.ImageLockedException;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.cli.text.QemuOpts;
import imago.probe.Imago;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago amend}: changes the format options of an existing image in place, as {@code qemu-img amend} does. */
@Command(name = "amend", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Changes the format options of FILE in place, as qemu-img amend does (qcow2: compat, "
                + "refcount_bits, lazy_refcounts, data_file, data_file_raw, size; -o help lists them)."})
final class AmendCommand implements Callable<Integer> {
    /** qemu-img's help for the qcow2 amend options (the only format qemu-img 7.2 amends that imago has). */
    private static final String QCOW2_HELP = """
            Amend options for 'qcow2':
              backing_file=<str>     - File name of a base image
              backing_fmt=<str>      - Image format of the base image
              compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])
              data_file=<str>        - File name of an external data file
              data_file_raw=<bool (on/off)> - The external data file must stay valid as a raw image
              encrypt.iter-time=<num> - Time to spend in PBKDF in milliseconds
              encrypt.keyslot=<num>  - Select a single keyslot to modify explicitly
              encrypt.new-secret=<str> - New secret to set in the matching keyslots. Empty string to erase
              encrypt.old-secret=<str> - Select all keyslots that match this password
              encrypt.state=<str>    - Select new state of affected keyslots (active/inactive)
              lazy_refcounts=<bool (on/off)> - Postpone refcount updates
              refcount_bits=<num>    - Width of a reference count entry in bits
              size=<size>            - Virtual disk size
            """;
    private static final Set<String> CACHE_MODES = Set.of("none", "off", "writeback", "writethrough", "directsync",
            "unsafe");

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "The options to change, name=value[,...] "
            + "(repeatable; 'help' lists them).")
    private List<String> options = new ArrayList<>();

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet: no progress.")
    private boolean quiet;

    @Option(names = "-t", paramLabel = "CACHE", description = "Cache mode for FILE (imago writes through the host "
            + "page cache and syncs at the end in every mode).")
    private String cache;

    @Option(names = "--force", description = "Go ahead with changes qemu-img refuses unless forced.")
    private boolean force;

    @Parameters(arity = "0..*", paramLabel = "FILE", description = "The image.")
    private List<String> files = new ArrayList<>();

    AmendCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        if (options.isEmpty()) {
            throw new CliException(null, "Must specify options (-o)\nTry '" + session.program()
                    + " --help' for more information");
        }
        Map<String, String> opts;
        try {
            opts = QemuOpts.parse(options);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        }
        boolean help = opts.containsKey("help") || opts.containsKey("?");
        if (format.name() != null && help) {
            return printHelp(format.name());
        }
        if (files.size() != 1) {
            throw new CliException(null, "Expecting one image file name");
        }
        if (cache != null && !CACHE_MODES.contains(cache)) {
            throw new CliException(null, "Invalid cache option: " + cache);
        }
        String file = files.getFirst();
        if (help) {
            try (Image image = OpenFailures.open(session, session.opener(file, null, true), file, null)) {
                if (Imago.describe(image.format()).readOnly()) {
                    throw OpenFailures.readOnlyFormat(file); // qemu-img opens it read-write first
                }
                return printHelp(image.format());
            }
        }
        // the progress line starts once the options are accepted (qemu-img's qemu_progress_print(0) comes after
        // their parsing), and ends with a newline even when they are refused
        // the image and its chain must open (qemu-img opens them before amending): its words if they do not
        OpenFailures.open(session, session.opener(file, format.name(), true).lock(false), file, format.name()).close();
        Progress bar = new Progress(session.out(), progress && !quiet, progress && !quiet);
        try {
            session.opener(file, format.name(), true).amend(opts, force, fraction -> bar.print(100 * fraction));
        } catch (IllegalArgumentException e) {
            bar.finish();
            throw new CliException(null, e.getMessage());
        } catch (UnsupportedFeatureException e) {
            bar.finish();
            throw new CliException(null, e.detail());
        } catch (ImageLockedException e) {
            // qemu-img's read-write open of the image is what meets the other process's lock: its words for it
            bar.finish();
            throw OpenFailures.couldNotOpen(session, file, format.name(), e);
        } catch (ReadOnlyImageException e) {
            bar.finish(); // qemu-img opens the image read-write first, and a read-only format refuses that
            if (QemuReasons.readOnlyFormat(e.detail())) {
                throw OpenFailures.readOnlyFormat(file);
            }
            throw e;
        } catch (IOException | RuntimeException e) {
            bar.finish();
            throw e;
        }
        bar.finish();
        return Cli.OK;
    }

    private int printHelp(String fmt) {
        if (!Imago.formats().contains(fmt)) {
            throw new CliException(null, "Unknown file format '" + fmt + "'");
        }
        if (!fmt.equals("qcow2")) {
            throw new CliException(null, "Format driver '" + fmt + "' does not support option amendment");
        }
        session.out().print(QCOW2_HELP);
        return Cli.OK;
    }

    /** qemu-img's progress line: {@code     (P/100%)} and a carriage return per update, a newline at the end. */
    private static final class Progress {
        private final PrintStream out;
        private final boolean on;
        private final boolean newline;
        private boolean started;

        Progress(PrintStream out, boolean on, boolean newline) {
            this.out = out;
            this.on = on;
            this.newline = newline;
        }

        void print(double percent) {
            started = true;
            if (on) {
                out.printf(java.util.Locale.ROOT, "    (%.2f/100%%)\r", percent);
                out.flush();
            }
        }

        /** The last update (100%, once the amendment had started, whether it worked or not) and the newline. */
        void finish() {
            if (started) {
                print(100);
            }
            if (newline) {
                out.print("\n");
                out.flush();
            }
        }
    }
}
