package imago.cli.command;

import imago.api.Extent;
import imago.api.Image;
import imago.cli.convert.Progress;
import imago.cli.convert.ReadFailure;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code imago compare}: whether two images have the same guest contents, with qemu-img compare's
 * messages and exit codes (0 identical, 1 different, 2 cannot open, 3 cannot query, 4 cannot read).
 */
@Command(name = "compare", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Checks whether two images have the same guest contents, as qemu-img compare does.",
            "Ranges both images report as zero are skipped; a longer image must be zero past the shorter one's end "
                    + "(unless -s, which also requires the same allocation)."},
        footer = {"", "Exit status: 0 identical, 1 different (or a usage error), 2 an image cannot be opened, "
                + "3 its allocation cannot be queried, 4 it cannot be read."})
final class CompareCommand implements Callable<Integer> {
    /** Exit status: the images differ. */
    static final int DIFFERENT = 1;
    /** Exit status: an image cannot be opened. */
    static final int OPEN_FAILED = 2;
    /** Exit status: an image's allocation cannot be queried. */
    static final int STATUS_FAILED = 3;
    /** Exit status: an image cannot be read. */
    static final int READ_FAILED = 4;
    /** qemu-img's IO_BUF_SIZE: data is compared in chunks of at most this many bytes. */
    private static final int CHUNK = 2 << 20;
    /** QEMU reports a mismatch at the start of the 512-byte sector (of the chunk) that holds it. */
    private static final int SECTOR = 512;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(CHUNK).asReadOnlyBuffer();

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-f", paramLabel = "FMT", description = "The format of FILE1 (default: probe it).")
    private String format1;

    @Option(names = "-F", paramLabel = "FMT", description = "The format of FILE2 (default: probe it).")
    private String format2;

    @Option(names = "-s", description = "Strict: images of different sizes, or with different allocation, differ.")
    private boolean strict;

    @Option(names = "-q", description = "Quiet: print nothing, only set the exit status.")
    private boolean quiet;

    @Option(names = "-p", description = "Show progress.")
    private boolean progress;

    @Option(names = "-T", paramLabel = "CACHE", description = "The images' cache mode, checked as qemu-img checks it; "
            + "the page cache is used either way.")
    private String cache;

    @Option(names = {"-U", "--force-share"}, description = "Open without taking the images' locks.")
    private boolean forceShare;

    @Parameters(index = "0", paramLabel = "FILE1", description = "The first image.")
    private String file1;

    @Parameters(index = "1", paramLabel = "FILE2", description = "The second image.")
    private String file2;

    private Progress shown;

    CompareCommand(Session session) {
        this.session = session;
    }

    /** qemu-img compare's words for a block status query that failed. */
    private static final String ALLOCATION_FAILED = "Sector allocation test failed";

    /** A failure with its own exit status. */
    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        final int status;
        final String file;
        final String what;

        Failure(int status, String file, String what, Throwable cause) {
            super(cause);
            this.status = status;
            this.file = file;
            this.what = what;
        }
    }

    @Override
    public Integer call() {
        if (cache != null && !Arguments.CACHE_MODES.contains(cache)) {
            session.error("Invalid source cache option: " + cache);
            return OPEN_FAILED; // qemu-img compare's status for it, as for an image it cannot open
        }
        Image a = null;
        Image b = null;
        try {
            a = open(file1, format1);
            b = open(file2, format2);
            if (progress && !quiet) {
                shown = new Progress(session.out(), Math.max(a.size(), b.size()));
                shown.start();
            }
            int status = compare(a, b);
            if (shown != null) {
                session.out().print('\n');
            }
            return status;
        } catch (Failure f) {
            String cause = Errors.describe(f.getCause(), session, f.file);
            // qemu-img's words: no reason when a block status query fails, the error's name when a read does (the
            // library's message is in the --debug trace)
            session.error(f.what == null ? cause : f.what.equals(ALLOCATION_FAILED)
                    ? ALLOCATION_FAILED + " for " + f.file
                    : f.what + " of " + f.file + ": " + ReadFailure.strerror(f.getCause()));
            if (session.debug()) {
                f.getCause().printStackTrace(session.err());
            }
            return f.status;
        } finally {
            closeQuietly(b);
            closeQuietly(a);
        }
    }

    private Image open(String file, String format) throws Failure {
        try {
            return OpenFailures.open(session, session.opener(file, format, false).lock(!forceShare), file, format);
        } catch (IOException | RuntimeException e) {
            throw new Failure(OPEN_FAILED, file, null, e);
        }
    }

    private int compare(Image a, Image b) throws Failure {
        long sizeA = a.size();
        long sizeB = b.size();
        if (strict && sizeA != sizeB) {
            return say(DIFFERENT, "Strict mode: Image size mismatch!");
        }
        long common = Math.min(sizeA, sizeB);
        ByteBuffer bufA = ByteBuffer.allocateDirect(CHUNK);
        ByteBuffer bufB = ByteBuffer.allocateDirect(CHUNK);
        long offset = 0;
        while (offset < common) {
            Extent ea = extent(a, file1, offset, sizeA - offset);
            Extent eb = extent(b, file2, offset, sizeB - offset);
            long chunk = Math.min(ea.length(), eb.length());
            if (strict && !sameStatus(ea, sizeA, eb, sizeB)) {
                return say(DIFFERENT, "Strict mode: Offset " + offset + " block status mismatch!");
            }
            if (ea.zero() && eb.zero()) {
                // both read as zeroes: nothing to read
            } else if (ea.present() == eb.present()) {
                if (ea.present()) {
                    chunk = Math.min(chunk, CHUNK);
                    read(a, file1, bufA, offset, (int) chunk);
                    read(b, file2, bufB, offset, (int) chunk);
                    int at = bufA.mismatch(bufB);
                    if (at >= 0) {
                        return mismatch(offset, at);
                    }
                }
            } else {
                chunk = Math.min(chunk, CHUNK);
                int at = nonZero(ea.present() ? a : b, ea.present() ? file1 : file2, bufA, offset, (int) chunk);
                if (at >= 0) {
                    return mismatch(offset, at);
                }
            }
            offset += chunk;
            advance(chunk);
        }
        if (sizeA != sizeB) {
            say(0, "Warning: Image size mismatch!");
            Image over = sizeA > sizeB ? a : b;
            String overFile = sizeA > sizeB ? file1 : file2;
            long end = over.size();
            while (offset < end) {
                Extent e = extent(over, overFile, offset, end - offset);
                long chunk = e.length();
                if (e.present() && !e.zero()) {
                    chunk = Math.min(chunk, CHUNK);
                    int at = nonZero(over, overFile, bufA, offset, (int) chunk);
                    if (at >= 0) {
                        return mismatch(offset, at);
                    }
                }
                offset += chunk;
                advance(chunk);
            }
        }
        return say(Cli.OK, "Images are identical.");
    }

    /**
     * Whether qemu's block status flags would be equal: allocated, zero, data, offset valid, and EOF
     * (the run reaches the end of its image).
     */
    private static boolean sameStatus(Extent x, long sizeX, Extent y, long sizeY) {
        return x.present() == y.present() && x.zero() == y.zero() && x.data() == y.data()
                && x.hostOffset().isPresent() == y.hostOffset().isPresent()
                && (x.offset() + x.length() == sizeX) == (y.offset() + y.length() == sizeY);
    }

    private int mismatch(long chunkStart, int index) {
        return say(DIFFERENT, "Content mismatch at offset " + (chunkStart + index / SECTOR * SECTOR) + "!");
    }

    private int say(int status, String message) {
        if (!quiet) {
            session.out().println(message);
        }
        return status;
    }

    private void advance(long bytes) {
        if (shown != null) {
            shown.accept(bytes);
        }
    }

    /** The index of the first non-zero byte of {@code [offset, offset + length)}, or -1. */
    private static int nonZero(Image image, String file, ByteBuffer buf, long offset, int length) throws Failure {
        read(image, file, buf, offset, length);
        return buf.mismatch(ZEROES.duplicate().limit(length));
    }

    private static Extent extent(Image image, String file, long offset, long maxLength) throws Failure {
        try {
            return image.extent(offset, maxLength);
        } catch (IOException | RuntimeException e) {
            throw new Failure(STATUS_FAILED, file, ALLOCATION_FAILED, e);
        }
    }

    private static void read(Image image, String file, ByteBuffer buf, long offset, int length) throws Failure {
        buf.clear().limit(length);
        try {
            image.read(buf, offset);
        } catch (IOException | RuntimeException e) {
            throw new Failure(READ_FAILED, file, "Error while reading offset " + offset, e);
        }
        buf.position(0).limit(length); // whether or not read() moved the position
    }

    private void closeQuietly(Image image) {
        if (image != null) {
            try {
                image.close();
            } catch (IOException | RuntimeException e) {
                if (session.debug()) {
                    e.printStackTrace(session.err());
                }
            }
        }
    }
}
