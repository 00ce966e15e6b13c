package imago.cli.command;

import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.NoSuchSnapshotException;
import imago.api.SnapshotInfo;
import imago.api.UnsupportedFeatureException;
import imago.cli.info.InfoReport;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code imago snapshot}: lists (-l), creates (-c), deletes (-d) and applies (-a) internal snapshots with qemu-img
 * snapshot's syntax, messages and exit codes. Like qemu-img, -d finds the snapshot by name (the first one), -a by id
 * and then by name, and -c, -d and -a open the image writable.
 */
@Command(name = "snapshot", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Lists (-l), creates (-c), deletes (-d) or applies (-a) an image's internal snapshots, as "
                + "qemu-img snapshot does; lists when no action is given."})
final class SnapshotCommand implements Callable<Integer>, QemuOptionChecks {
    /** qemu-img copies the name into a 256-byte buffer (QEMUSnapshotInfo.name). */
    static final int MAX_NAME_BYTES = 255;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = "-l", description = "List the snapshots.")
    private boolean list;

    @Option(names = "-c", paramLabel = "SNAPSHOT", description = "Create a snapshot named SNAPSHOT.")
    private String create;

    @Option(names = "-d", paramLabel = "SNAPSHOT", description = "Delete the (first) snapshot named SNAPSHOT.")
    private String delete;

    @Option(names = "-a", paramLabel = "SNAPSHOT", description = "Apply (revert to) the snapshot with id or name "
            + "SNAPSHOT.")
    private String apply;

    @Option(names = "-q", description = "Quiet (accepted for qemu-img compatibility).")
    @SuppressWarnings("unused") // qemu-img prints nothing more without -q for these actions
    private boolean quiet;

    @Option(names = {"-U", "--force-share"}, description = "Open without taking the image's lock (only with -l).")
    private boolean forceShare;

    @Mixin
    private ImageFile file;

    /** The options that name an action; one at most. */
    private static final java.util.Set<String> ACTIONS = java.util.Set.of("-l", "-a", "-c", "-d");

    SnapshotCommand(Session session) {
        this.session = session;
    }

    /** qemu-img's snapshot refuses a second action as it reads it. */
    @Override
    public void checkOption(String option, String value, List<String> before) {
        if (ACTIONS.contains(option) && before.stream().anyMatch(ACTIONS::contains)) {
            throw cannotMix();
        }
    }

    private CliException cannotMix() {
        return new CliException(null, "Cannot mix '-l', '-a', '-c', '-d'\nTry '" + session.program()
                + " --help' for more information");
    }

    @Override
    public Integer call() throws IOException {
        int actions = (list ? 1 : 0) + (create != null ? 1 : 0) + (delete != null ? 1 : 0) + (apply != null ? 1 : 0);
        if (actions > 1) {
            throw cannotMix();
        }
        boolean writable = actions == 1 && !list;
        if (writable && forceShare) {
            throw new CliException(null, "Could not open '" + file.name() + "': force-share=on can only be used with "
                    + "read-only images");
        }
        try (Image image = OpenFailures.open(session, session.opener(file.name(), format.name(), writable)
                .writable(writable).lock(!forceShare), file.name(), format.name())) {
            if (writable && format.name() == null && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, file.name());
            }
            if (create != null) {
                create(image);
            } else if (delete != null) {
                delete(image);
            } else if (apply != null) {
                apply(image);
            } else {
                session.out().print(InfoReport.snapshotTable(image.info().snapshots()));
            }
        }
        return Cli.OK;
    }

    private void create(Image image) throws IOException {
        try {
            image.createSnapshot(truncate(create));
        } catch (ImageException e) {
            throw new CliException(null, "Could not create snapshot '" + create + "': " + errno(e));
        }
    }

    private void delete(Image image) throws IOException {
        // qemu-img looks the snapshot up by name (bdrv_snapshot_find), then deletes that id
        SnapshotInfo found = image.info().snapshots().stream().filter(s -> s.name().equals(delete)).findFirst()
                .orElseThrow(() -> new CliException(null, "Could not delete snapshot '" + delete
                        + "': snapshot not found"));
        try {
            image.deleteSnapshot(found.id());
        } catch (ImageException e) {
            throw new CliException(null, "Could not delete snapshot '" + delete + "': " + e.detail());
        }
    }

    private void apply(Image image) throws IOException {
        if (!image.supports(Feature.INTERNAL_SNAPSHOTS)) {
            if (format.name() == null && image.format().equals("raw")) {
                // qemu-img warns once more here: bdrv_snapshot_goto reopens the image to try its file child
                Arguments.warnProbedRaw(session, file.name());
            }
            throw new CliException(null, "Could not apply snapshot '" + apply + "': Block driver does not support "
                    + "snapshots");
        }
        try {
            image.applySnapshot(apply);
        } catch (NoSuchSnapshotException e) {
            throw new CliException(null, "Could not apply snapshot '" + apply + "': Failed to load snapshot: "
                    + "No such file or directory");
        } catch (UnsupportedFeatureException e) {
            // active dirty bitmaps: qemu-img prints the reason alone
            throw new CliException(null, "Could not apply snapshot '" + apply + "': " + e.detail());
        } catch (ImageException e) {
            throw new CliException(null, "Could not apply snapshot '" + apply + "': Failed to load snapshot: "
                    + e.detail());
        }
    }

    /**
     * qemu-img's "-errno (strerror)" for a failed create where qemu fails for the same cause (refcount overflow,
     * a format without snapshots); imago's own message otherwise.
     */
    private static String errno(ImageException e) {
        return switch (e) {
            case ImageLimitException _ -> "-22 (Invalid argument)";
            case UnsupportedFeatureException _ -> "-95 (Operation not supported)";
            default -> e.detail();
        };
    }

    /** The name as qemu-img stores it: at most 255 bytes of UTF-8. */
    static String truncate(String name) {
        byte[] b = name.getBytes(StandardCharsets.UTF_8);
        if (b.length <= MAX_NAME_BYTES) {
            return name;
        }
        // cut at a character boundary (qemu cuts bytes, which may split a character)
        int end = MAX_NAME_BYTES;
        while (end > 0 && (b[end] & 0xC0) == 0x80) {
            end--;
        }
        return new String(b, 0, end, StandardCharsets.UTF_8);
    }
}
