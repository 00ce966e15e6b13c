package imago.cli.command;

import imago.api.Image;
import imago.cli.io.IoOptions;
import imago.cli.io.QemuIo;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code imago io}: qemu-io's commands on one image, with qemu-io's global options: the cache, AIO and discard
 * modes, {@code -s} (writes go to a temporary overlay), {@code -C} (copy-on-read) and the options that only
 * tune QEMU's own I/O ({@code -m}, {@code -T}), which are accepted.
 */
@Command(name = "io", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs qemu-io commands on an image (writable unless -r); 'help' lists them.",
            "Without -c, reads commands from standard input, one per line."})
final class IoCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

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

    @Mixin
    private ImageFile file;

    IoCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        // checked here, in qemu-io's order, so that the message is qemu-io's and not picocli's
        if (!List.of("none", "off", "directsync", "writethrough", "writeback", "unsafe").contains(cacheMode)) {
            throw new CliException(null, "Invalid cache option: " + cacheMode);
        }
        if (!List.of("threads", "native", "io_uring").contains(aio)) {
            throw new CliException(null, "Invalid aio option: " + aio);
        }
        boolean unmap = switch (discard) {
            case "unmap", "on" -> true;
            case "ignore", "off" -> false;
            default -> throw new CliException(null, "Invalid discard option: " + discard);
        };
        boolean direct = List.of("none", "off", "directsync").contains(cacheMode);
        if (aio.equals("native") && !direct) {
            throw new CliException(null, "can't open device " + file.name() + ": aio=native was specified, but it "
                    + "requires cache.direct=on, which was not specified.");
        }
        IoOptions options = new IoOptions(unmap, copyOnRead,
                cacheMode.equals("writethrough") || cacheMode.equals("directsync"));
        if (snapshot && !readOnly) {
            return runOnOverlay(direct, options);
        }
        try (Image image = session.opener(file.name(), format.name()).writable(!readOnly).lock(!forceShare.given())
                .directIO(direct).noSync(cacheMode.equals("unsafe")).open()) {
            if (format.name() == null && !readOnly && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, file.name());
            }
            return run(image, options);
        }
    }

    private int run(Image image, IoOptions options) throws IOException {
        QemuIo io = new QemuIo(session.program(), image, file.name(), session.out(), session.err(),
                e -> Errors.describe(e, session), options);
        return commands.isEmpty() ? io.run(System.in) : io.run(commands);
    }

    /**
     * {@code -s}, as QEMU's {@code snapshot=on}: a temporary qcow2 overlay backed by the image (opened read-only)
     * takes the writes and is deleted at the end, so the image is left as it was.
     */
    private int runOnOverlay(boolean direct, IoOptions options) throws IOException {
        try (TemporaryOverlay overlay = TemporaryOverlay.open(session, file.name(), format.name(),
                "imago-io-snapshot-", !forceShare.given(), direct)) {
            return run(overlay.image(), options);
        }
    }

}
