package imago.cli.command;

import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.cli.convert.Progress;
import imago.cli.info.InfoReport;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code imago rebase}: changes an image's backing file, as {@code qemu-img rebase} does. In safe mode
 * every range the image does not hold itself is compared between the old and the new backing chain,
 * and where they differ the old content is written into the image first, so that the guest sees the
 * same bytes afterwards; {@code -u} only changes the reference.
 */
@Command(name = "rebase", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Changes the backing file of an image, as qemu-img rebase does. Without -u, ranges the "
                + "image does not hold are compared between the old and the new backing file and copied into "
                + "the image where they differ, so its content stays the same; -b '' removes the backing file."})
final class RebaseCommand implements Callable<Integer> {
    /** Bytes compared per request, as qemu-img's IO_BUF_SIZE. */
    private static final int CHUNK = 2 << 20;
    /** qemu-img compares in sectors: differing runs are written with this granularity. */
    private static final int SECTOR = 512;

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Mixin
    private FormatOption format;

    @Option(names = "-b", paramLabel = "BACKING", description = "The new backing file ('' for none); a "
            + "relative name resolves against the image's directory and is stored as given.")
    private String backing;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "The new backing file's format.")
    private String backingFormat;

    @Option(names = "-u", description = "Unsafe: only change the reference, copy nothing.")
    private boolean unsafe;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-q", description = "Quiet.")
    @SuppressWarnings("unused") // rebase prints nothing but progress
    private boolean quiet;

    @Option(names = "-t", paramLabel = "CACHE", description = "FILE's cache mode, checked as qemu-img checks it (imago "
            + "writes through the OS page cache and syncs at the end in every mode).")
    private String cache;

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "The backing files' cache mode, checked as qemu-img "
            + "checks it.")
    private String sourceCache;

    @Option(names = {"-U", "--force-share"}, description = "Open without taking the image's lock (only with -u).")
    private boolean forceShare;

    @Mixin
    private ImageFile file;

    RebaseCommand(Session session) {
        this.session = session;
    }

    @Override
    public Integer call() throws IOException {
        if (!unsafe && backing == null) {
            throw new CliException(null, "Must specify backing file (-b) or use unsafe mode (-u)");
        }
        Arguments.checkCacheMode(cache, false);
        Arguments.checkCacheMode(sourceCache, true);
        String newName = backing == null || backing.isEmpty() ? null : backing;
        var opener = session.opener(file.name(), format.name(), true).writable(true).lock(!(unsafe && forceShare));
        if (unsafe) {
            // the old backing file need not exist any more: that is often why one rebases unsafely
            opener.noBacking();
        }
        try (Image image = OpenFailures.open(session, opener, file.name(), format.name())) {
            // a safe rebase opens the new backing file (probed without -F) before anything else, as qemu-img does
            try (Image below = unsafe || newName == null ? null : openNewBacking(newName)) {
                if (newName != null && backingFormat == null) {
                    // qemu-img copies and fails on this at the end; refusing before the copy leaves the image
                    // untouched (and an image or new backing file that does not open is reported first, as by
                    // qemu-img)
                    throw new CliException(null, "Could not change the backing file to '" + newName
                            + "': backing format must be specified");
                }
                if (!unsafe) {
                    copyDifferences(image, below);
                }
            }
            try {
                image.changeBackingFile(newName, newName == null ? null : backingFormat);
            } catch (UnsupportedFeatureException e) {
                if (e.feature() != Feature.BACKING_FILE) {
                    throw e;
                }
                // QEMU's words for a driver without change_backing_file (after the safe copy, as in qemu-img)
                throw new CliException(null, "Could not change the backing file to '" + (newName == null ? ""
                        : newName) + "': Operation not supported");
            } catch (ImageLimitException e) {
                // a name the header has no room for: the driver's reason, in qemu-img's sentence
                throw new CliException(null, "Could not change the backing file to '" + (newName == null ? ""
                        : newName) + "': " + e.detail());
            }
        }
        return Cli.OK;
    }

    /** Opens the new backing file {@code newName} (relative to the image), of {@code -F}'s format or probed. */
    private Image openNewBacking(String newName) throws CliException {
        Path dir = Path.of(file.name()).toAbsolutePath().getParent();
        Path target = dir == null ? Path.of(newName) : dir.resolve(newName);
        // QEMU opens (and names in its reason) the name joined to the image's directory
        String shown = InfoReport.combine(file.name(), newName);
        session.alias(target, shown);
        try {
            var o = Imago.opener().path(target);
            return (backingFormat == null ? o : o.format(backingFormat)).open();
        } catch (IOException | RuntimeException e) {
            String why = Errors.describe(e, session, null);
            if (why.startsWith(shown + ": ")) {
                why = why.substring(shown.length() + 2);
            }
            throw new CliException(null, "Could not open new backing file '" + newName + "': " + why);
        }
    }

    /**
     * Writes the old chain's bytes into the image wherever the new backing file ({@code below}, or none) would show
     * others.
     */
    private void copyDifferences(Image image, Image below) throws IOException {
        long size = image.size();
        Progress p = progress ? new Progress(session.out(), size) : null;
        if (p != null) {
            p.start();
        }
        ByteBuffer old = ByteBuffer.allocate(CHUNK);
        ByteBuffer fresh = ByteBuffer.allocate(CHUNK);
        long pos = 0;
        while (pos < size) {
            Extent e = image.extent(pos, Math.min(size - pos, CHUNK));
            int n = (int) e.length();
            if (!(e.depth() == 0 && e.present())) {
                old.clear().limit(n);
                image.read(old, pos);
                fresh.clear().limit(n);
                long inNew = below == null ? 0 : Math.max(0, Math.min(n, below.size() - pos));
                if (inNew > 0) {
                    below.read(fresh.limit((int) inNew), pos);
                }
                Arrays.fill(fresh.array(), (int) inNew, n, (byte) 0);
                writeDifferences(image, old.array(), fresh.array(), n, pos);
            }
            pos += n;
            if (p != null) {
                p.accept(n);
            }
        }
        image.flush();
        if (p != null) {
            p.finish();
        }
    }

    /** Writes the runs of sectors where {@code old} and {@code fresh} differ into the image at {@code base}. */
    private static void writeDifferences(Image image, byte[] old, byte[] fresh, int n, long base)
            throws IOException {
        int at = 0;
        while (at < n) {
            int mismatch = Arrays.mismatch(old, at, n, fresh, at, n);
            if (mismatch < 0) {
                return;
            }
            int start = at + mismatch / SECTOR * SECTOR;
            int end = start;
            // extend over sectors that differ; stop at the first sector that is the same
            while (end < n) {
                int len = Math.min(SECTOR, n - end);
                if (Arrays.equals(old, end, end + len, fresh, end, end + len)) {
                    break;
                }
                end += len;
            }
            image.write(ByteBuffer.wrap(old, start, end - start), base + start);
            at = end;
        }
    }
}
