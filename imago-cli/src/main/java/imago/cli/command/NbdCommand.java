package imago.cli.command;

import imago.api.Image;
import imago.nbd.DetectZeroes;
import imago.nbd.NbdServer;
import imago.nbd.TlsCredentials;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago nbd}: serves an image over NBD with qemu-nbd's command line, defaults, messages and exit
 * statuses. Like qemu-nbd it serves one client unless {@code -e} says more, and stops when the last client
 * leaves unless {@code -t}.
 */
@Command(name = "nbd", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Serves an image over the Network Block Device protocol, as qemu-nbd does.",
            "Listens on TCP (-b, -p; default 0.0.0.0:10809) or on a Unix socket (-k)."})
final class NbdCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "The image format (default: probe it).")
    private String format;

    @Option(names = {"-r", "--read-only"}, description = "Export read-only.")
    private boolean readOnly;

    @Option(names = {"-x", "--export-name"}, paramLabel = "NAME", description = "The export's name (default: empty).")
    private String exportName = "";

    @Option(names = {"-D", "--description"}, paramLabel = "TEXT", description = "A human-readable description.")
    private String description;

    @Option(names = {"-p", "--port"}, paramLabel = "PORT", description = "TCP port to listen on (default 10809).")
    private String port;

    @Option(names = {"-b", "--bind"}, paramLabel = "IFACE", description = "Address to bind (default 0.0.0.0).")
    private String bind;

    @Option(names = {"-k", "--socket"}, paramLabel = "PATH", description = "Listen on this Unix socket instead.")
    private String socket;

    @Option(names = {"-e", "--shared"}, paramLabel = "NUM",
            description = "Clients served at once (default 1; 0 for no limit).")
    private String shared = "1";

    @Option(names = {"-t", "--persistent"}, description = "Do not stop when the last client leaves.")
    private boolean persistent;

    @Option(names = {"-A", "--allocation-depth"}, description = "Offer the qemu:allocation-depth meta context.")
    private boolean allocationDepth;

    @Option(names = {"-B", "--bitmap"}, paramLabel = "NAME",
            description = "Offer a persistent dirty bitmap as qemu:dirty-bitmap:NAME (repeatable).")
    private List<String> bitmaps = new ArrayList<>();

    @Option(names = {"-l", "--load-snapshot"}, paramLabel = "SNAPSHOT",
            description = "Export an internal snapshot (read-only).")
    private String snapshot;

    @Option(names = "--discard", paramLabel = "MODE", description = "ignore (default) or unmap.")
    private String discard = "ignore";

    @Option(names = "--detect-zeroes", paramLabel = "MODE", description = "off (default), on or unmap.")
    private String detectZeroes = "off";

    @Option(names = {"-n", "--nocache"}, description = "Accepted for qemu-nbd's sake; imago uses the page cache.")
    private boolean nocache;

    @Option(names = "--cache", paramLabel = "MODE", description = "none, writeback (default), writethrough, "
            + "directsync or unsafe (checked; imago uses the page cache).")
    private String cache;

    @Option(names = "--aio", paramLabel = "MODE", description = "native, io_uring or threads (checked, ignored).")
    private String aio;

    @Option(names = "--pid-file", paramLabel = "PATH", description = "Write the server's process id there.")
    private String pidFile;

    @Option(names = "--fork", description = "Run in the background; return once the server listens.")
    private boolean fork;

    @Option(names = {"-s", "--snapshot"},
            description = "Write to a temporary qcow2 overlay over the image, deleted at exit; the image is unchanged.")
    private boolean temporaryOverlay;

    // --object is the global option (GlobalOptions): its tls-creds-x509 objects are the TLS credentials here
    @Option(names = "--tls-creds", paramLabel = "ID",
            description = "Serve over TLS only, with the credentials object ID.")
    private String tlsCreds;

    @Option(names = {"-v", "--verbose"}, description = "Accepted; prints nothing more.")
    private boolean verbose;

    @Parameters(paramLabel = "FILE", arity = "0..1", description = "The image.")
    private String file;

    NbdCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (file == null) {
            throw new CliException(null, "Invalid number of arguments");
        }
        int maxClients = shared();
        boolean unmap = switch (discard) {
            case "ignore", "off" -> false;
            case "unmap", "on" -> true;
            default -> throw new CliException(null, "Invalid discard mode `" + discard + "'");
        };
        DetectZeroes zeroes = switch (detectZeroes) {
            case "off", "on", "unmap" -> DetectZeroes.valueOf(detectZeroes.toUpperCase(Locale.ROOT));
            default -> throw new CliException(null, "Failed to parse detect_zeroes mode: invalid parameter value: "
                    + detectZeroes);
        };
        if (zeroes == DetectZeroes.UNMAP && !unmap) {
            throw new CliException(null, "setting detect-zeroes to unmap is not allowed without setting discard "
                    + "operation to unmap");
        }
        checkCacheModes();
        session.unmapsByDefault(unmap);
        TlsCredentials tls = TlsObjects.serverCredentials(session.objects(), tlsCreds);
        SocketAddress address = address();
        if (fork) {
            // before the image is opened (and locked): the server started in the background opens it
            return Daemon.start(session);
        }
        boolean exportReadOnly = readOnly || snapshot != null;
        TemporaryOverlay overlay = null;
        Image image;
        if (temporaryOverlay && !exportReadOnly) {
            overlay = TemporaryOverlay.open(session, file, format, "imago-nbd-snapshot-", true, false);
            image = overlay.image();
        } else {
            var opener = session.opener(file, format).writable(!exportReadOnly);
            if (snapshot != null) {
                opener.snapshot(snapshot);
            }
            try {
                image = opener.open();
            } catch (IOException e) {
                // qemu-nbd's words for a snapshot it cannot load (status 1, as any failure here)
                CliException notLoaded = snapshot != null ? OpenFailures.snapshotNotLoaded(e) : null;
                if (notLoaded != null) {
                    throw notLoaded;
                }
                throw e;
            }
        }
        CountDownLatch closed = new CountDownLatch(1);
        Path pid = pidFile == null ? null : Path.of(pidFile);
        NbdServer server = null;
        try {
            NbdServer.Builder builder = NbdServer.builder(image).exportName(exportName).description(description)
                    .readOnly(exportReadOnly).maxConnections(maxClients).multiConn(maxClients != 1)
                    .persistent(persistent).unmap(unmap).detectZeroes(zeroes).allocationDepth(allocationDepth)
                    .tls(tls);
            // qemu-nbd offers (and lists) the bitmaps of its -B options last first
            for (String b : bitmaps.reversed()) {
                builder.bitmap(b);
            }
            if (pid != null) { // before the socket appears, so that whoever waits for the socket finds it too
                Files.writeString(pid, ProcessHandle.current().pid() + "\n", StandardCharsets.US_ASCII);
            }
            server = builder.bind(address);
            Daemon.signalReady();
            // SIGTERM and SIGINT stop the server as qemu-nbd's do: the image is closed cleanly (its dirty bitmaps
            // stored, its metadata written) before the JVM exits
            NbdServer running = server;
            Thread hook = new Thread(() -> {
                running.close();
                awaitQuietly(closed);
            }, "imago-nbd-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            server.awaitTermination();
            removeHook(hook);
        } catch (IllegalArgumentException e) {
            throw new CliException(null, e.getMessage());
        } finally {
            if (server != null) {
                server.close();
            }
            if (pid != null) {
                Files.deleteIfExists(pid);
            }
            if (overlay != null) {
                overlay.close();
            } else {
                image.close();
            }
            closed.countDown();
        }
        return Cli.OK;
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void removeHook(Thread hook) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is shutting down: the hook runs and waits for the image to be closed
        }
    }


    /** Clients at once: qemu-nbd's {@code -e}, where 0 means no limit. */
    private int shared() {
        int n;
        try {
            n = Integer.parseInt(shared);
        } catch (NumberFormatException e) {
            n = -1;
        }
        if (n < 0) {
            throw new CliException(null, "Invalid shared device number '" + shared + "'");
        }
        return n == 0 ? Integer.MAX_VALUE : n;
    }

    private void checkCacheModes() {
        if (cache != null && !List.of("none", "off", "writeback", "writethrough", "directsync", "unsafe")
                .contains(cache)) {
            throw new CliException(null, "Invalid cache mode `" + cache + "'");
        }
        if (aio != null && !List.of("native", "io_uring", "threads").contains(aio)) {
            throw new CliException(null, "Invalid aio mode '" + aio + "'");
        }
    }

    private SocketAddress address() {
        if (socket != null) {
            return UnixDomainSocketAddress.of(socket);
        }
        int p = NbdServer.DEFAULT_PORT;
        if (port != null) {
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                p = -1;
            }
            if (p < 0 || p > 65535) {
                throw new CliException(null, "Invalid port '" + port + "'");
            }
        }
        return new InetSocketAddress(bind == null ? "0.0.0.0" : bind, p);
    }
}
