package imago.cli.command;

import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.cli.convert.Progress;
import imago.cli.convert.Throttle;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago commit}: writes what an image and the layers between it and a base hold into the base,
 * then (unless {@code -d} or {@code -b}) empties the image, as {@code qemu-img commit} does. The base's writes
 * reach stable storage before the image is emptied, so an interruption loses nothing.
 *
 * <p>{@code -b} implies {@code -d}, as in qemu-img: with a base below the immediate backing file, emptying the
 * image would let the intermediate layers' older data show through, so the image is left as it is.
 */
@Command(name = "commit", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Commits an image's changes into its backing file (or the base given with -b), as "
                + "qemu-img commit does, and then empties the image unless -d or -b is given."})
final class CommitCommand implements Callable<Integer>, QemuOptionChecks {
    /** Bytes copied per request. */
    private static final int CHUNK = 2 << 20;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The image format (default: probe it).")
    private String format;

    @Option(names = "-b", paramLabel = "BASE", description = "The backing layer to commit into "
            + "(default: the image's backing file); relative names resolve against each layer's directory. "
            + "Implies -d.")
    private String base;

    @Option(names = "-d", description = "Leave the image as it is instead of emptying it.")
    private boolean keep;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet: print nothing on success.")
    private boolean quiet;

    @Option(names = "-t", paramLabel = "CACHE", description = "Cache mode, checked as qemu-img checks it (imago writes "
            + "through the OS page cache and syncs at the end in every mode).")
    private String cache;

    @Option(names = "-r", paramLabel = "RATE", description = "Copy at most RATE bytes per second (k, M, G suffixes).")
    private String rate;

    /** Limits the copy when {@code -r} is given. */
    private Throttle throttle;

    @Parameters(paramLabel = "FILE", description = "The image to commit.")
    private String file;

    CommitCommand(Session session) {
        this.session = session;
    }

    /** qemu-img's commit checks the rate limit as it reads it. */
    @Override
    public void checkOption(String option, String value, List<String> before) {
        if (option.equals("-r")) {
            Arguments.cvtnum("rate limit", value);
        }
    }

    @Override
    public Integer call() throws IOException {
        Arguments.checkCacheMode(cache, false);
        if (rate != null) {
            long bytesPerSecond = Arguments.cvtnum("rate limit", rate);
            throttle = bytesPerSecond > 0 ? new Throttle(bytesPerSecond) : null;
        }
        if (base != null) {
            keep = true; // qemu-img: -b implies -d
        }
        int depth;
        // read-write, as qemu-img opens it before anything else: another process's lock is reported in its words
        // (a writable open that writes nothing leaves the file as it is)
        try (Image image = OpenFailures.open(session, session.opener(file, format, true).writable(true), file,
                format)) {
            depth = baseDepth(image);
        }
        try (Image image = OpenFailures.open(session, session.opener(file, format, true).writable(!keep)
                .writableBacking(depth), file, format)) {
            Image target = image;
            for (int i = 0; i < depth; i++) {
                target = target.backing().orElseThrow();
            }
            commit(image, target, depth);
        }
        if (!quiet) {
            session.out().println("Image committed.");
        }
        return Cli.OK;
    }

    /** How many layers below the image the base is. */
    private int baseDepth(Image image) throws IOException {
        if (Imago.describe(image.format()).readOnly()) {
            // qemu-img opens the image read-write before it looks for a backing file
            throw OpenFailures.readOnlyFormat(file);
        }
        if (image.backing().isEmpty()) {
            throw new CliException(null, "Image does not have a backing file");
        }
        if (base == null) {
            return 1;
        }
        List<Image> chain = new ArrayList<>();
        for (Optional<Image> i = Optional.of(image); i.isPresent(); i = i.get().backing()) {
            chain.add(i.get());
        }
        for (int d = 1; d < chain.size(); d++) {
            var namer = chain.get(d - 1).info();
            if (namer.backingFilename().filter(base::equals).isPresent()) {
                return d;
            }
            Path dir = Path.of(namer.filename()).toAbsolutePath().getParent();
            Path wanted = dir == null ? Path.of(base) : dir.resolve(base);
            Path layer = Path.of(chain.get(d).info().filename());
            if (Files.exists(wanted) && Files.exists(layer) && Files.isSameFile(wanted, layer)) {
                return d;
            }
        }
        throw new CliException(null, "Did not find '" + base + "' in the backing chain of '" + file + "'");
    }

    /**
     * Copies every range the chain above {@code target} answers for into {@code target}, syncs it, and
     * empties the image unless {@code -d}.
     */
    private void commit(Image image, Image target, int depth) throws IOException {
        long size = image.size();
        if (target.size() < size) {
            target.resize(size, Preallocation.OFF);
        }
        Progress p = progress ? new Progress(session.out(), size) : null;
        if (p != null) {
            p.start();
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        long pos = 0;
        while (pos < size) {
            Extent e = image.extent(pos, Math.min(size - pos, CHUNK));
            long n = e.length();
            if (e.depth() < depth) {
                if (throttle != null) {
                    throttle.acquire(n);
                }
                if (e.zero() && !e.data()) {
                    target.writeZeroes(pos, n);
                } else {
                    buf.clear().limit((int) n);
                    image.read(buf, pos);
                    target.write(buf.flip(), pos);
                }
            }
            pos += n;
            if (p != null) {
                p.accept(n);
            }
        }
        target.flush();
        // a format that cannot empty a layer (vmdk) keeps its data, as QEMU's bdrv_make_empty leaves it
        if (!keep && image.supports(Feature.BACKING_FILE)) {
            try {
                image.makeEmpty();
            } catch (UnsupportedFeatureException e) {
                if (e.feature() != Feature.BACKING_FILE) {
                    throw e;
                }
                // a format that names backing files but cannot empty a layer (qed) keeps its data, as in QEMU
            }
            image.flush();
        }
        if (p != null) {
            p.finish();
        }
    }
}
