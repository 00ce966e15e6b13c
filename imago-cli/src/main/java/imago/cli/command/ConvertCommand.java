package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.cli.convert.Converter;
import imago.cli.convert.Progress;
import imago.cli.text.QemuOpts;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.LongConsumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code imago convert}: copies an image's contents into a new image, sparsely, as qemu-img convert does. */
@Command(name = "convert", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "Copies the guest contents of SRC (through its backing chain) into a new image DST.")
final class ConvertCommand implements Callable<Integer> {
    /** qemu-img's largest {@code -S}: 32768 sectors. */
    private static final long MAX_MIN_SPARSE = 32768L * 512;
    /** How many chunks are copied at once. */
    private static final int THREADS = 4;
    /** How many chunks are compressed at once: twice the cores, so that reads overlap compression. */
    private static final int COMPRESSORS = 2 * Runtime.getRuntime().availableProcessors();

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The source format (default: probe it).")
    private String format;

    @Option(names = "-O", paramLabel = "OUTPUT_FMT", description = "The format of the new image (default: raw).")
    private String outputFormat = "raw";

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Options for the new image, name=value[,...].")
    private List<String> options = new ArrayList<>();

    @Option(names = "-c", description = "Compress the clusters of the new image (its format must support it).")
    private boolean compress;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet: no progress.")
    private boolean quiet;

    @Option(names = "-S", paramLabel = "SIZE", description = "Blocks of SIZE bytes that read as zero are not "
            + "written (default 4k; a multiple of 512 up to 16M; 0 writes everything).")
    private String sparse;

    @Option(names = {"-U", "--force-share"}, description = "Open the source without taking its lock.")
    private boolean forceShare;

    @Parameters(index = "0", paramLabel = "SRC", description = "The source image.")
    private String src;

    @Parameters(index = "1", paramLabel = "DST", description = "The new image (replaced if it exists).")
    private String dst;

    ConvertCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        int minSparse = Converter.DEFAULT_MIN_SPARSE;
        if (sparse != null) {
            long s = Arguments.size("buffer size for sparse output", sparse);
            if (s % 512 != 0 || s > MAX_MIN_SPARSE) {
                throw new CliException(null, "Invalid buffer size for sparse output specified. Valid sizes are "
                        + "multiples of 512 up to " + MAX_MIN_SPARSE + ". Select 0 to disable sparse detection "
                        + "(fully allocates output).");
            }
            minSparse = (int) s;
        }
        Arguments.installedFormat(null, outputFormat);
        Map<String, String> opts;
        try {
            opts = QemuOpts.parse(options);
        } catch (IllegalArgumentException e) {
            throw new CliException(dst, e.getMessage());
        }
        CreateOptions.Builder builder = CreateOptions.builder();
        String preallocation = opts.remove("preallocation");
        if (preallocation != null) {
            try {
                builder.preallocation(Preallocation.parse(preallocation));
            } catch (IllegalArgumentException e) {
                throw new CliException(dst, e.getMessage());
            }
        }
        opts.forEach(builder::option);

        try (Image source = session.opener(src, format).lock(!forceShare).open()) {
            Path target = session.file(dst);
            session.create(dst, target, outputFormat, builder.size(source.size()).build());
            boolean cannotCompress = false;
            try (Image out = Imago.opener().path(target).format(outputFormat).writable(true)
                    .gate(session.openGate(target)).open()) {
                int cluster = compress ? out.info().clusterSize().orElse(0) : 0;
                if (compress && (cluster == 0 || Converter.CHUNK % cluster != 0)) {
                    cannotCompress = true;
                } else {
                    Progress shown = progress && !quiet ? new Progress(session.out(), source.size()) : null;
                    LongConsumer sink = shown == null ? bytes -> { } : shown;
                    if (shown != null) {
                        shown.start();
                    }
                    (compress ? Converter.compressing(source, out, minSparse, COMPRESSORS, sink, cluster)
                            : new Converter(source, out, minSparse, THREADS, sink)).run();
                    if (shown != null) {
                        shown.finish();
                    }
                }
            }
            if (cannotCompress) {
                // qemu-img refuses before creating anything: leave no half-made target behind
                Files.deleteIfExists(target);
                throw new CliException(null, "Compression not supported for this file format");
            }
        }
        return Cli.OK;
    }
}
