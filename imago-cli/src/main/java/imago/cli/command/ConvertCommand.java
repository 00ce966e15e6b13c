package imago.cli.command;

import imago.api.CreateOptions;
import imago.api.Feature;
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
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.LongConsumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago convert}: copies an image's contents into a new image, sparsely, as qemu-img convert does.
 *
 * <p>Cache modes ({@code -t}, {@code -T}) take qemu-img's names. imago always reads and writes through
 * the host page cache; the target's mode only decides whether the new image is synced to stable media
 * at the end. imago's default is {@code writeback} (synced), where qemu-img convert's is {@code unsafe}
 * (never synced).
 */
@Command(name = "convert", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Copies the guest contents of SRC (through its backing chain) into a new image DST.",
            "DST is synced to stable media at the end unless -t unsafe is given (qemu-img convert's default "
                    + "is unsafe: it never syncs)."})
final class ConvertCommand implements Callable<Integer> {
    /** qemu-img's cache mode names ({@code bdrv_parse_cache_mode}); {@code off} is {@code none}. */
    private static final Set<String> CACHE_MODES = Set.of("none", "off", "writeback", "unsafe", "directsync",
            "writethrough");
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

    @Option(names = "-W", description = "Write chunks as soon as they are read, out of order (by default, as "
            + "qemu-img, they are written in order, so that a new image's clusters lie in guest order).")
    private boolean outOfOrder;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet: no progress.")
    private boolean quiet;

    @Option(names = "-S", paramLabel = "SIZE", description = "Blocks of SIZE bytes that read as zero are not "
            + "written (default 4k; a multiple of 512 up to 16M; 0 writes everything).")
    private String sparse;

    @Option(names = "-t", paramLabel = "CACHE", description = "The target's cache mode: unsafe never syncs "
            + "DST (qemu-img convert's default); writeback (the default here), none, writethrough and directsync "
            + "sync it once, at the end. The host page cache is used either way.")
    private String cache = "writeback";

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "The source's cache mode (none, writeback, "
            + "unsafe, directsync, writethrough): checked, then ignored (the host page cache is used).")
    private String sourceCache = "writeback";

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
        if (!CACHE_MODES.contains(sourceCache)) {
            throw new CliException(null, "Invalid source cache option: " + sourceCache);
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
        // a backing file for the new image: qemu-img takes it from -o, and insists on its format
        String backingFile = opts.remove("backing_file");
        String backingFmt = opts.remove("backing_fmt");
        if (backingFile != null) {
            if (backingFmt == null) {
                throw new CliException(null, "Use of backing file requires explicit backing format");
            }
            builder.backingFile(backingFile).backingFormat(backingFmt);
        }
        opts.forEach(builder::option);

        try (Image source = session.opener(src, format).lock(!forceShare).open()) {
            Path target = session.file(dst);
            session.create(dst, target, outputFormat, builder.size(source.size()).build());
            boolean cannotCompress = false;
            // an unknown mode: qemu-img refuses it after creating the target (and leaves it there)
            boolean badCache = !CACHE_MODES.contains(cache);
            try (Image out = session.withSecrets(Imago.opener(), opts).path(target).format(outputFormat).writable(true)
                    .noSync(cache.equals("unsafe")).gate(session.openGate(target)).open()) {
                // as qemu-img's needs_compressed_writes: a target that only appends takes compressed clusters
                boolean compressing = compress || !out.supports(Feature.RANDOM_WRITES)
                        && out.supports(Feature.COMPRESSED_WRITES);
                int cluster = compressing ? out.info().clusterSize().orElse(0) : 0;
                if (compressing && (cluster == 0 || Converter.CHUNK % cluster != 0)) {
                    cannotCompress = true;
                } else if (!badCache) {
                    Progress shown = progress && !quiet ? new Progress(session.out(), source.size()) : null;
                    LongConsumer sink = shown == null ? bytes -> { } : shown;
                    if (shown != null) {
                        shown.start();
                    }
                    (compressing ? Converter.compressing(source, out, minSparse, COMPRESSORS, sink, cluster)
                            : new Converter(source, out, minSparse, THREADS, sink, outOfOrder)).run();
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
            if (badCache) {
                throw new CliException(null, "Invalid cache option: " + cache);
            }
        }
        return Cli.OK;
    }
}
