package imago.cli.command;

import imago.cli.io.OpenArguments;
import imago.cli.io.QemuIo;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code imago io} (and a {@code qemu-io} symlink to the launcher): qemu-io's commands on an image, with qemu-io's
 * global options: the cache, AIO and discard modes, {@code -s} (writes go to a temporary overlay), {@code -C}
 * (copy-on-read) and the options that only tune QEMU's own I/O ({@code -m}, {@code -T}), which are accepted. With
 * no {@code FILE}, commands run until {@code open} opens one; with no {@code -c}, they are read from standard input.
 */
@Command(name = "io",
        description = {"Runs qemu-io commands on an image (writable unless -r); 'help' lists them.",
            "Without FILE, 'open' opens one. Without -c, reads commands from standard input, one per line, after "
                + "a prompt."})
final class IoCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "The image format (default: probe it).")
    private String format;

    @Option(names = {"-h", "--help"}, description = "Print the options, in qemu-io's order, and exit.")
    private boolean help;

    @Option(names = {"-V", "--version"}, description = "Print the version, in qemu-io's shape, and exit.")
    private boolean version;

    @Spec
    private CommandSpec spec;

    @Option(names = {"-r", "--read-only"}, description = "Open read-only.")
    private boolean readOnly;

    @Option(names = {"-c", "--cmd"}, paramLabel = "CMD", description = "A command to run (repeatable), "
            + "e.g. 'write -P 0xab 1M 64k'.")
    private List<String> commands = new ArrayList<>();

    @Option(names = {"-s", "--snapshot"}, description = "Write to a temporary overlay, deleted at exit; the "
            + "image itself is only read.")
    private boolean snapshot;

    @Option(names = {"-C", "--copy-on-read"}, description = "Copy what reads find below the top image into it.")
    private boolean copyOnRead;

    private String cacheMode = "writeback";

    /** {@code -n}: the {@code none} cache mode. */
    @Option(names = {"-n", "--nocache"}, description = "Bypass the host page cache (O_DIRECT): -t none.")
    void nocache(boolean on) {
        if (on) {
            cacheMode = "none";
        }
    }

    /** {@code -t MODE}: qemu's cache modes; the last of -n and -t wins, as in qemu-io. */
    @Option(names = {"-t", "--cache"}, paramLabel = "MODE", description = "Cache mode: none (or off; O_DIRECT), "
            + "directsync (O_DIRECT, each write flushed), writethrough (each write flushed), writeback (default) "
            + "or unsafe (flushes do not wait for stable media).")
    void cache(String mode) {
        cacheMode = mode;
    }

    private String aio = "threads";

    /** {@code -i MODE}. */
    @Option(names = {"-i", "--aio"}, paramLabel = "MODE", description = "AIO mode: threads, native or io_uring "
            + "(accepted; imago's own I/O runs underneath). native needs -n or -t none/directsync, as in qemu-io.")
    void aio(String mode) {
        aio = mode;
    }

    /** {@code -k}: {@code -i native}. */
    @Option(names = {"-k", "--native-aio"}, description = "Same as -i native.")
    void nativeAio(boolean on) {
        if (on) {
            aio = "native";
        }
    }

    @Option(names = {"-d", "--discard"}, paramLabel = "MODE", description = "Discard mode: unmap (or on; default) "
            + "or ignore (or off: discard requests succeed without changing the image).")
    private String discard = "unmap";

    @Option(names = {"-m", "--misalign"}, description = "Misaligns qemu-io's buffers; accepted, imago's buffers "
            + "are its own.")
    @SuppressWarnings("unused") // accepted for qemu-io's command lines
    private boolean misalign;

    @Option(names = {"-T", "--trace"}, paramLabel = "PATTERN", description = "QEMU's trace events; accepted, "
            + "imago has none.")
    @SuppressWarnings("unused") // accepted for qemu-io's command lines
    private List<String> trace;

    @Mixin
    private ForceShareOption forceShare;

    @Parameters(paramLabel = "FILE", arity = "0..1", description = "The image; without it, 'open' opens one.")
    private String file;

    IoCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        // qemu-io acts on the first of -h and -V and exits; picocli's own help would not have its shape
        for (OptionSpec given : spec.commandLine().getParseResult().matchedOptions()) {
            if (given.longestName().equals("--help")) {
                session.out().print(IoUsage.text(session.program().equals(Cli.QEMU_IO) ? Cli.QEMU_IO
                        : session.program() + " io"));
                return Cli.OK;
            }
            if (given.longestName().equals("--version")) {
                session.out().println(session.program() + " version " + VersionProvider.projectVersion()
                        + " (imago, with qemu-io 7.2's commands and options)");
                session.out().println("Java " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")");
                return Cli.OK;
            }
        }
        // checked here, in qemu-io's order, so that the message is qemu-io's and not picocli's
        IoOpener.checkModes(cacheMode, aio, discard);
        QemuIo io = new QemuIo(session.program(), new IoOpener(session), session.out(), session.err(),
                e -> Errors.describe(e, session));
        try {
            if (file != null) {
                Map<String, String> options = format == null ? Map.of() : Map.of("driver", format);
                io.open(new OpenArguments(file, options, readOnly, snapshot, copyOnRead, cacheMode, aio, discard,
                        forceShare.given(), true));
            }
            return commands.isEmpty() ? io.run(session.in()) : io.run(commands);
        } finally {
            io.close();
        }
    }
}
