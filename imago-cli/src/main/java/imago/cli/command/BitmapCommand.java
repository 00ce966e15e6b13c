package imago.cli.command;

import imago.api.Bitmaps;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago bitmap}: changes the persistent dirty bitmaps of an image as {@code qemu-img bitmap} does, applying
 * the operations in the order they are given and stopping at the first that fails (the ones before it are kept).
 */
@Command(name = "bitmap", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Adds, removes, clears, enables, disables or merges into the persistent dirty bitmap BITMAP "
                + "of FILE (qcow2 v3), in the order the operations are given, as qemu-img bitmap does."})
final class BitmapCommand implements Callable<Integer> {
    /** Stands for QEMU's node name in its messages: imago has no block graph, QEMU's names vary from run to run. */
    static final String NODE_NAME = "#block100";

    /** One operation: its name as qemu-img's messages say it, and the merge source. */
    private record Action(String op, String source) {
    }

    private final Session session;
    private final List<Action> actions = new ArrayList<>();

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = "-b", paramLabel = "SRC_FILE", description = "The image holding the --merge source bitmaps.")
    private String sourceFile;

    @Option(names = "-F", paramLabel = "SRC_FMT", description = "The format of SRC_FILE (default: probe it).")
    private String sourceFormat;

    @Option(names = "-g", paramLabel = "GRANULARITY", description = "Bytes per bit of a bitmap --add creates "
            + "(default: the cluster size, within 4k and 64k).")
    private String granularity;

    @Parameters(arity = "0..*", paramLabel = "FILE BITMAP", description = "The image and the bitmap's name.")
    private List<String> operands = new ArrayList<>();

    BitmapCommand(Session session) {
        this.session = session;
    }

    @Option(names = "--add", description = "Add BITMAP, empty and enabled (repeatable, like every operation).")
    void add(boolean on) {
        actions.add(new Action("add", null));
    }

    @Option(names = "--remove", description = "Remove BITMAP.")
    void remove(boolean on) {
        actions.add(new Action("remove", null));
    }

    @Option(names = "--clear", description = "Clear every bit of BITMAP.")
    void clear(boolean on) {
        actions.add(new Action("clear", null));
    }

    @Option(names = "--enable", description = "Make BITMAP record writes.")
    void enable(boolean on) {
        actions.add(new Action("enable", null));
    }

    @Option(names = "--disable", description = "Stop BITMAP recording writes.")
    void disable(boolean on) {
        actions.add(new Action("disable", null));
    }

    @Option(names = "--merge", paramLabel = "SOURCE", description = "Mark dirty in BITMAP what bitmap SOURCE "
            + "(of SRC_FILE if -b is given, else of FILE) marks dirty.")
    void merge(String source) {
        actions.add(new Action("merge", source));
    }

    @Override
    public Integer call() throws IOException {
        // qemu-img's checks, in its order: -g while reading the options, then the combinations, then the operands
        long g = granularity == null ? 0 : granularity(granularity);
        if (actions.isEmpty()) {
            throw new CliException(null, "Need at least one of --add, --remove, --clear, --enable, --disable, "
                    + "or --merge");
        }
        boolean adds = actions.stream().anyMatch(a -> a.op().equals("add"));
        if (g != 0 && !adds) {
            throw new CliException(null, "granularity only supported with --add");
        }
        if (sourceFormat != null && sourceFile == null) {
            throw new CliException(null, "-F only supported with -b");
        }
        if (sourceFile != null && actions.stream().noneMatch(a -> a.op().equals("merge"))) {
            throw new CliException(null, "Merge bitmap source file only supported with --merge");
        }
        if (operands.size() != 2) {
            throw new CliException(null, "Expecting filename and bitmap name");
        }
        String file = operands.get(0);
        String bitmap = operands.get(1);
        // QEMU passes the granularity as 32 bits: a value that is 0 there is no granularity, but one was given
        long bits32 = g & 0xFFFF_FFFFL;
        long wanted = g == 0 ? 0 : bits32 == 0 ? 1 : bits32;
        // the bitmaps are the image's own: its backing chain is not opened, as qemu-img does
        try (Image image = OpenFailures.open(session, session.opener(file, format.name(), true).writable(true)
                .noBacking(), file, format.name())) {
            if (session.probesFormat(file, format.name()) && image.format().equals("raw")) {
                Arguments.warnProbedRaw(session, session.fileName(file));
            }
            Image source = sourceFile == null ? null
                    : OpenFailures.open(session, session.opener(sourceFile, sourceFormat, false).noBacking(),
                            sourceFile, sourceFormat);
            try {
                for (Action a : actions) {
                    try {
                        apply(image.bitmaps(), a, bitmap, wanted, source == null ? image : source);
                    } catch (IllegalArgumentException | UnsupportedFeatureException e) {
                        throw new CliException(null, "Operation " + a.op() + " on bitmap " + bitmap + " failed: "
                                + reason(e, bitmap));
                    }
                }
            } finally {
                if (source != null) {
                    source.close();
                }
            }
        }
        return Cli.OK;
    }

    /** The -g value as qemu-img bitmap reads it, with the older two-report message of its cvtnum for a bad one. */
    private static long granularity(String text) {
        return Arguments.sizeInTwoReports("granularity", text, Long.MAX_VALUE);
    }

    private static void apply(Bitmaps bitmaps, Action a, String bitmap, long granularity, Image source)
            throws IOException {
        switch (a.op()) {
            case "add" -> bitmaps.add(bitmap, granularity, true);
            case "remove" -> bitmaps.remove(bitmap);
            case "clear" -> bitmaps.clear(bitmap);
            case "enable" -> bitmaps.enable(bitmap);
            case "disable" -> bitmaps.disable(bitmap);
            case "merge" -> bitmaps.merge(bitmap, source.bitmaps(), a.source());
            default -> throw new IllegalStateException(a.op());
        }
    }

    /** QEMU's words for a refused operation. */
    private static String reason(Exception e, String bitmap) {
        if (e instanceof UnsupportedFeatureException u) {
            return switch (u.featureName()) {
                case "persistent bitmap" -> "Can't make bitmap '" + bitmap + "' persistent in '" + NODE_NAME + "': "
                        + u.detail();
                case "persistent bitmaps" -> "Can't store persistent bitmaps to " + NODE_NAME + ": " + u.detail();
                default -> u.detail();
            };
        }
        return e.getMessage();
    }
}
