package imago.cli.command;

import imago.api.Image;
import imago.cli.info.InfoReport;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago snapshot}: lists an image's internal snapshots as qemu-img snapshot -l does. */
@Command(name = "snapshot", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Lists an image's internal snapshots (-l), as qemu-img snapshot does; prints nothing for "
                + "an image without any.",
            "Creating (-c), deleting (-d) and applying (-a) snapshots is not supported yet."})
final class SnapshotCommand implements Callable<Integer> {
    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The image format (default: probe it).")
    private String format;

    @Option(names = "-l", description = "List the snapshots.")
    private boolean list;

    @Option(names = "-c", paramLabel = "SNAPSHOT", description = "Create a snapshot (not supported yet).")
    private String create;

    @Option(names = "-d", paramLabel = "SNAPSHOT", description = "Delete a snapshot (not supported yet).")
    private String delete;

    @Option(names = "-a", paramLabel = "SNAPSHOT", description = "Apply a snapshot (not supported yet).")
    private String apply;

    @Option(names = "-q", description = "Quiet (accepted for qemu-img compatibility).")
    @SuppressWarnings("unused") // qemu-img lists snapshots with -q too
    private boolean quiet;

    @Option(names = {"-U", "--force-share"}, description = "Open without taking the image's lock.")
    private boolean forceShare;

    @Parameters(paramLabel = "FILE", description = "The image.")
    private String file;

    SnapshotCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        int actions = (list ? 1 : 0) + (create != null ? 1 : 0) + (delete != null ? 1 : 0) + (apply != null ? 1 : 0);
        if (actions > 1) {
            throw new CliException(null, "Cannot mix '-l', '-a', '-c', '-d' (try 'imago snapshot --help')");
        }
        try (Image image = session.opener(file, format).lock(!forceShare).open()) {
            if (create != null) {
                throw new CliException(file, "creating snapshots is not supported yet");
            } else if (delete != null) {
                throw new CliException(file, "deleting snapshots is not supported yet");
            } else if (apply != null) {
                throw new CliException(file, "applying snapshots is not supported yet");
            } else if (list) {
                session.out().print(InfoReport.snapshotTable(image.info().snapshots()));
            }
        }
        return Cli.OK;
    }
}
