package imago.cli.command;

import imago.cli.convert.Converter;
import imago.cli.text.QemuOpts;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago convert}: copies the contents of one or more images (concatenated) into a new or an existing
 * image, sparsely, as qemu-img convert does. This class reads and checks the options in qemu-img's order, with
 * its messages; {@link ConvertJob} opens the images and copies.
 *
 * <p>Cache modes ({@code -t}, {@code -T}) take qemu-img's names. imago always reads and writes through
 * the host page cache; the target's mode only decides whether the new image is synced to stable media
 * at the end. imago's default is {@code writeback} (synced), where qemu-img convert's is {@code unsafe}
 * (never synced).
 */
@Command(name = "convert", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Copies the guest contents of SRC... (through their backing chains, one after the other) "
                + "into a new image DST, or an existing one with -n.",
            "DST is synced to stable media at the end unless -t unsafe is given (qemu-img convert's default "
                    + "is unsafe: it never syncs)."})
final class ConvertCommand implements Callable<Integer> {
    /** qemu-img's largest {@code -S}: 32768 sectors. */
    private static final long MAX_MIN_SPARSE = 32768L * 512;
    /** qemu-img's largest {@code -m}. */
    private static final int MAX_COROUTINES = 16;
    /** How many chunks are copied at once without {@code -m}, at most (and at most one per core, but 2). */
    private static final int THREADS = 4;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The sources' format (default: probe each).")
    private String format;

    @Option(names = "-O", paramLabel = "OUTPUT_FMT", description = "The format of the target (default: raw).")
    private String outputFormat;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Options for the new image, name=value[,...]; "
            + "-o help lists them.")
    private List<String> options = new ArrayList<>();

    @Option(names = "-c", description = "Compress the clusters of the target (its format must support it).")
    private boolean compress;

    @Option(names = "-W", description = "Write chunks as soon as they are read, out of order (by default, as "
            + "qemu-img, they are written in order, so that a new image's clusters lie in guest order).")
    private boolean outOfOrder;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet: no progress, no salvage warnings.")
    private boolean quiet;

    @Option(names = "-S", paramLabel = "SIZE", description = "Blocks of SIZE bytes that read as zero are not "
            + "written (default 4k; a multiple of 512 up to 16M; 0 writes everything).")
    private String sparse;

    @Option(names = "-t", paramLabel = "CACHE", description = "The target's cache mode: unsafe never syncs "
            + "DST (qemu-img convert's default); writeback (the default here), none, writethrough and directsync "
            + "sync it once, at the end. The host page cache is used either way.")
    private String cache = "writeback";

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "The sources' cache mode (none, writeback, "
            + "unsafe, directsync, writethrough): checked, then ignored (the host page cache is used).")
    private String sourceCache = "writeback";

    @Option(names = {"-U", "--force-share"}, description = "Open the sources without taking their locks.")
    private boolean forceShare;

    @Option(names = "-n", description = "Write into the existing DST instead of creating it (-o is then ignored).")
    private boolean noCreate;

    @Option(names = "--target-is-zero", description = "With -n: DST reads as zeroes already, so zeroes are not "
            + "written.")
    private boolean targetIsZero;

    @Option(names = "--target-image-opts", description = "With -n: DST is an option string, "
            + "driver=FMT,file.filename=FILE.")
    private boolean targetImageOpts;

    @Option(names = "-B", paramLabel = "BACKING_FILE", description = "The new image's backing file: only what the "
            + "source's top layer holds is copied, the rest is left to the backing file.")
    private String backing;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "The backing file's format (required with -B).")
    private String backingFormat;

    @Option(names = "-l", paramLabel = "SNAPSHOT", description = "Copy the first source's internal snapshot: a name "
            + "or id, or snapshot.id=ID[,snapshot.name=NAME].")
    private String snapshotParam;

    @Option(names = "-s", paramLabel = "SNAPSHOT", description = "The same as -l SNAPSHOT (older qemu-img's option, "
            + "which qemu-img 7.2 no longer has).")
    private String snapshotName;

    @Option(names = "-m", paramLabel = "NUM", description = "How many chunks are copied at once, 1 to 16 "
            + "(qemu-img's coroutines; default here: one per core, 2 to 4; 8 in qemu-img).")
    private String coroutines;

    @Option(names = "-r", paramLabel = "RATE", description = "Write at most RATE bytes per second (k, M, G "
            + "suffixes).")
    private String rateLimit;

    @Option(names = "-C", description = "Copy offloading: data is copied as it is, without looking for zero "
            + "blocks in it (not with -c, -S or --salvage).")
    private boolean copyRange;

    @Option(names = "--salvage", description = "Copy sectors that cannot be read as zeroes, with a warning each, "
            + "instead of failing.")
    private boolean salvage;

    @Option(names = "--bitmaps", description = "Copy the persistent dirty bitmaps of the (first) source.")
    private boolean bitmaps;

    @Option(names = "--skip-broken-bitmaps", description = "With --bitmaps: leave out inconsistent bitmaps instead "
            + "of failing.")
    private boolean skipBrokenBitmaps;

    @Parameters(paramLabel = "FILE", description = "The sources, then the target.")
    private List<String> files = new ArrayList<>();

    ConvertCommand(Session session) {
        this.session = session;
    }

    /**
     * Sets an option as picocli would ({@link DirectConvert} parses the command line instead): {@code value} is the
     * option's argument, or {@code null} for a flag; a value option given again replaces the last value, but for
     * {@code -o}, which adds one.
     *
     * @throws IllegalArgumentException if this command has no such option
     */
    void option(String name, String value) {
        switch (name) {
            case "-f" -> format = value;
            case "-O" -> outputFormat = value;
            case "-o" -> options.add(value);
            case "-S" -> sparse = value;
            case "-t" -> cache = value;
            case "-T" -> sourceCache = value;
            case "-B" -> backing = value;
            case "-F" -> backingFormat = value;
            case "-l" -> snapshotParam = value;
            case "-s" -> snapshotName = value;
            case "-m" -> coroutines = value;
            case "-r" -> rateLimit = value;
            case "-c" -> compress = true;
            case "-W" -> outOfOrder = true;
            case "-p" -> progress = true;
            case "-q" -> quiet = true;
            case "-U", "--force-share" -> forceShare = true;
            case "-n" -> noCreate = true;
            case "--target-is-zero" -> targetIsZero = true;
            case "--target-image-opts" -> targetImageOpts = true;
            case "-C" -> copyRange = true;
            case "--salvage" -> salvage = true;
            case "--bitmaps" -> bitmaps = true;
            case "--skip-broken-bitmaps" -> skipBrokenBitmaps = true;
            default -> throw new IllegalArgumentException("convert has no option " + name);
        }
    }

    /** Adds a file name (a source, or the target when it is the last), as picocli adds its parameters. */
    void file(String name) {
        files.add(name);
    }

    @Override
    public Integer call() throws IOException {
        ConvertRequest request = check();
        if (request == null) {
            return Cli.OK; // -o help printed
        }
        return new ConvertJob(session, request).run();
    }

    /** qemu-img convert's checks before it opens anything, in its order; {@code null} when -o help was printed. */
    private ConvertRequest check() {
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
        // a thread per core: the writes, in order, take one core, and readers past the other cores only compete with
        // the writer and spread the chunks over more caches (512 MiB qcow2 -> raw on 2 cores: 2 threads take ~8% less
        // wall and CPU time than 4); 2 at least, so that a read overlaps a write
        int threads = Math.clamp(Runtime.getRuntime().availableProcessors(), 2, THREADS);
        if (coroutines != null) {
            threads = coroutines(coroutines);
        }
        long rate = 0;
        if (rateLimit != null) {
            rate = Arguments.cvtnum("rate limit", rateLimit);
        }
        String outFormat = outputFormat == null && !targetImageOpts ? "raw" : outputFormat;
        if (skipBrokenBitmaps && !bitmaps) {
            throw new CliException(null, "Use of --skip-broken-bitmaps requires --bitmaps");
        }
        if (compress && copyRange) {
            throw new CliException(null, "Cannot enable copy offloading when -c is used");
        }
        if (sparse != null && copyRange) {
            throw new CliException(null, "Cannot enable copy offloading when -S is used");
        }
        if (copyRange && salvage) {
            throw new CliException(null, "Cannot use copy offloading in salvaging mode");
        }
        if (targetImageOpts && !noCreate) {
            throw new CliException(null, "--target-image-opts requires use of -n flag");
        }
        if (noCreate && !options.isEmpty()) {
            throw new CliException(null, "-o has no effect when skipping image creation");
        }
        if (targetIsZero && !noCreate) {
            throw new CliException(null, "--target-is-zero requires use of -n flag");
        }
        if (!options.isEmpty() && QemuOpts.asksForHelp(options)) {
            if (outFormat == null) {
                throw new CliException(null, "Option help requires a format be specified");
            }
            CreateOptionsHelp.print(session, outFormat, files.size() >= 2 ? files.getLast() : null);
            return null;
        }
        if (files.size() < 2) {
            throw new CliException(null, "Must specify image file name");
        }
        if (!Arguments.CACHE_MODES.contains(sourceCache)) {
            throw new CliException(null, "Invalid source cache option: " + sourceCache);
        }
        if (snapshotName != null && snapshotParam == null) {
            snapshotParam = snapshotName;
        }
        ConvertRequest.Flags flags = new ConvertRequest.Flags(compress, outOfOrder, progress, quiet, forceShare, noCreate,
                targetIsZero, targetImageOpts, copyRange, salvage, bitmaps, skipBrokenBitmaps);
        return new ConvertRequest(List.copyOf(files), format, outFormat, List.copyOf(options), cache,
                minSparse, threads, rate, backing, backingFormat, snapshotParam, flags);
    }

    /** {@code -m} as qemu's {@code qemu_strtoi} reads it (decimal, 0x hex or 0 octal), 1 to 16. */
    private static int coroutines(String text) {
        String t = text.strip();
        int radix = 10;
        String digits = t;
        if (t.startsWith("0x") || t.startsWith("0X")) {
            radix = 16;
            digits = t.substring(2);
        } else if (t.length() > 1 && t.startsWith("0")) {
            radix = 8;
            digits = t.substring(1);
        }
        int n;
        try {
            n = Integer.parseInt(digits, radix);
        } catch (NumberFormatException e) {
            n = 0;
        }
        if (n < 1 || n > MAX_COROUTINES || !text.equals(t)) {
            throw new CliException(null, "Invalid number of coroutines. Allowed number of coroutines is between 1 "
                    + "and " + MAX_COROUTINES);
        }
        return n;
    }
}
