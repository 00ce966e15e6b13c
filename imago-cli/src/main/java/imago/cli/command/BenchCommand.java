package imago.cli.command;

import imago.api.Image;
import imago.cli.text.Numbers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code imago bench}: qemu-img bench. COUNT requests of SIZE bytes, DEPTH of them in flight at once
 * (one virtual thread each, each with its own buffer), at OFFSET, OFFSET + STEP, ... wrapping at the
 * end of the image.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = {"Runs a simple sequential I/O benchmark on an image, as qemu-img bench does.",
            "Requests go through the image's format (and backing chain) with DEPTH of them in flight at once; "
                    + "the host page cache is used either way (-n and -t are accepted for compatibility)."})
final class BenchCommand implements Callable<Integer>, QemuOptionChecks {
    private static final Set<String> CACHE_MODES = Set.of("none", "off", "writeback", "writethrough", "directsync",
            "unsafe");
    private static final Set<String> AIO_MODES = Set.of("threads", "native", "io_uring");

    private final Session session;

    @Mixin
    @SuppressWarnings("unused") // picocli sets its options
    private GlobalOptions globals;

    @Option(names = "-c", paramLabel = "COUNT", description = "Number of requests (default 75000).")
    private String count;

    @Option(names = "-d", paramLabel = "DEPTH", description = "Requests in flight at once (default 64).")
    private String depth;

    @Mixin
    private FormatOption format;

    @Option(names = "-n", description = "Native AIO in qemu-img; accepted and ignored (the page cache is used).")
    @SuppressWarnings("unused") // accepted for compatibility
    private boolean nativeAio;

    @Option(names = "-i", paramLabel = "AIO", description = "AIO mode (threads, native, io_uring); accepted and "
            + "ignored.")
    private String aio;

    @Option(names = "-o", paramLabel = "OFFSET", description = "Offset of the first request (default 0).")
    private String offset;

    @Option(names = "--pattern", paramLabel = "PATTERN", description = "Byte to write with -w (default 0).")
    private String pattern;

    @Option(names = "-q", description = "Quiet (accepted for qemu-img compatibility; the output is the same).")
    @SuppressWarnings("unused") // qemu-img bench prints the same with -q
    private boolean quiet;

    @Option(names = "-s", paramLabel = "SIZE", description = "Bytes per request (default 4096).")
    private String size;

    @Option(names = "-S", paramLabel = "STEP", description = "Distance between request offsets (default SIZE).")
    private String step;

    @Option(names = "-t", paramLabel = "CACHE", description = "Cache mode (none, writeback, writethrough, "
            + "directsync, unsafe); checked and ignored: the page cache is used either way.")
    private String cache;

    @Option(names = "-w", description = "Write instead of read.")
    private boolean write;

    @Option(names = "--flush-interval", paramLabel = "N", description = "With -w: flush after every N requests "
            + "(N at least DEPTH), first letting the requests in flight finish.")
    private String flushInterval;

    @Option(names = "--no-drain", description = "With --flush-interval: flush without waiting for the requests in "
            + "flight.")
    private boolean noDrain;

    @Mixin
    private ForceShareOption forceShare;

    @Mixin
    private ImageFile file;

    BenchCommand(Session session) {
        this.session = session;
    }

    /** The values qemu-img's bench checks as it reads them, each with its message. */
    @Override
    public void checkOption(String option, String value, List<String> before) {
        switch (option) {
            case "-c" -> unsigned(value, Integer.MAX_VALUE, "Invalid request count specified");
            case "-d" -> unsigned(value, Integer.MAX_VALUE, "Invalid queue depth specified");
            case "-o" -> Arguments.sizeInTwoReports("offset", value, Long.MAX_VALUE);
            case "-s" -> Arguments.sizeInTwoReports("buffer size", value, Integer.MAX_VALUE);
            case "-S" -> Arguments.sizeInTwoReports("step_size", value, Integer.MAX_VALUE);
            case "--pattern" -> unsigned(value, 0xff, "Invalid pattern byte specified");
            case "--flush-interval" -> unsigned(value, Integer.MAX_VALUE, "Invalid flush interval specified");
            case "-i" -> {
                if (!AIO_MODES.contains(value)) {
                    throw new CliException(null, "Invalid aio option: " + value);
                }
            }
            case "-t" -> {
                if (!CACHE_MODES.contains(value)) {
                    throw new CliException(null, "Invalid cache mode");
                }
            }
            default -> { }
        }
    }

    @Override
    public Integer call() throws IOException, InterruptedException {
        int n = count == null ? 75000 : (int) unsigned(count, Integer.MAX_VALUE, "Invalid request count specified");
        int inFlight = depth == null ? 64 : (int) unsigned(depth, Integer.MAX_VALUE, "Invalid queue depth specified");
        long start = offset == null ? 0 : Arguments.sizeInTwoReports("offset", offset, Long.MAX_VALUE);
        int bufSize = size == null ? 4096 : (int) Arguments.sizeInTwoReports("buffer size", size, Integer.MAX_VALUE);
        int stepSize = step == null ? 0 : (int) Arguments.sizeInTwoReports("step_size", step, Integer.MAX_VALUE);
        if (stepSize == 0) {
            stepSize = bufSize;
        }
        byte fill = pattern == null ? 0 : (byte) unsigned(pattern, 0xff, "Invalid pattern byte specified");
        int interval = flushInterval == null ? 0
                : (int) unsigned(flushInterval, Integer.MAX_VALUE, "Invalid flush interval specified");
        if (!write && interval != 0) {
            throw new CliException(null, "--flush-interval is only available in write tests");
        }
        if (interval != 0 && interval < inFlight) {
            throw new CliException(null, "Flush interval can't be smaller than depth");
        }
        if (aio != null && !AIO_MODES.contains(aio)) {
            throw new CliException(null, "Invalid aio option: " + aio);
        }
        if (cache != null && !CACHE_MODES.contains(cache)) {
            throw new CliException(null, "Invalid cache mode");
        }
        if ("native".equals(aio) && (cache == null || !List.of("none", "off", "directsync").contains(cache))) {
            // QEMU's file driver refuses this combination when it opens the image
            throw new CliException(null, "Could not open '" + file.name() + "': aio=native was specified, but it "
                    + "requires cache.direct=on, which was not specified.");
        }
        try (Image image = OpenFailures.open(session, session.opener(file.name(), format.name(), write)
                .writable(write).lock(!forceShare.given()), file.name(), format.name())) {
            if (write && session.probesFormat(file.name(), format.name()) && image.format().equals("raw")) {
                // qemu-img warns even with -q
                Arguments.warnProbedRaw(session, session.fileName(file.name()));
            }
            session.out().println("Sending " + n + " " + (write ? "write" : "read") + " requests, " + bufSize
                    + " bytes each, " + inFlight + " in parallel (starting at offset " + start + ", step size "
                    + stepSize + ")");
            if (interval != 0) {
                session.out().println("Sending flush every " + interval + " requests");
            }
            session.out().flush();
            long t0 = System.nanoTime();
            run(image, new Requests(n, start, stepSize, image.size()), Math.min(inFlight, n), bufSize, fill, interval);
            double seconds = (System.nanoTime() - t0) / 1e9;
            session.out().println(String.format(Locale.ROOT, "Run completed in %3.3f seconds.", seconds));
        }
        return Cli.OK;
    }

    /** Hands out the request offsets in qemu-img's order: OFFSET, then (previous + STEP) mod image size. */
    private static final class Requests {
        private final ReentrantLock lock = new ReentrantLock();
        private final long step;
        private final long imageSize;
        private int remaining;
        private long next;

        Requests(int count, long start, long step, long imageSize) {
            this.remaining = count;
            this.next = start;
            this.step = step;
            this.imageSize = imageSize;
        }

        /** The next request's offset, or -1 when all have been handed out. */
        long take() {
            lock.lock();
            try {
                if (remaining == 0) {
                    return -1;
                }
                remaining--;
                long off = next;
                // unsigned: off < 2^63 and step < 2^31, so the sum cannot wrap 64 bits
                next = imageSize == 0 ? 0 : Long.remainderUnsigned(next + step, imageSize);
                return off;
            } finally {
                lock.unlock();
            }
        }

        /** Hands out nothing more (after a failure). */
        void stop() {
            lock.lock();
            try {
                remaining = 0;
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Runs the requests on {@code workers} virtual threads. Requests hold {@code gate}'s read lock; a
     * draining flush takes its write lock, so that it waits for those in flight and holds back new ones.
     */
    private void run(Image image, Requests requests, int workers, int bufSize, byte fill, int interval)
            throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong completed = new AtomicLong();
        ReentrantReadWriteLock gate = new ReentrantReadWriteLock();
        List<Thread> threads = new ArrayList<>(workers);
        for (int i = 0; i < workers; i++) {
            threads.add(Thread.ofVirtual().name("bench-", i).start(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(Math.max(bufSize, 1)).limit(bufSize);
                while (buf.hasRemaining()) {
                    buf.put(fill);
                }
                for (long off = requests.take(); off >= 0; off = requests.take()) {
                    try {
                        buf.clear().limit(bufSize);
                        if (bufSize == 0) {
                            continue;
                        }
                        gate.readLock().lock();
                        try {
                            if (write) {
                                image.write(buf, off);
                            } else {
                                image.read(buf, off);
                            }
                        } finally {
                            gate.readLock().unlock();
                        }
                        if (interval != 0 && completed.incrementAndGet() % interval == 0) {
                            flush(image, noDrain ? null : gate.writeLock());
                        }
                    } catch (IOException | RuntimeException e) {
                        failure.compareAndSet(null, e);
                        requests.stop();
                    }
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        Throwable t = failure.get();
        if (t instanceof IllegalArgumentException) {
            // a request past the end: QEMU's block layer fails it with EIO, and qemu-img names no file
            throw new CliException(null, "Failed request: Input/output error");
        }
        if (t != null) {
            String why = Errors.describe(t, session, null);
            String name = file.name();
            throw new CliException(name, "Failed request: "
                    + (why.startsWith(name + ": ") ? why.substring(name.length() + 2) : why));
        }
        // like qemu-img, the final flush happens when the image is closed, after the timing
    }

    private static void flush(Image image, Lock drain) throws IOException {
        if (drain == null) {
            image.flush();
            return;
        }
        drain.lock();
        try {
            image.flush();
        } finally {
            drain.unlock();
        }
    }

    /** {@link Numbers#unsigned}, or a failure with {@code message}. */
    private static long unsigned(String text, long max, String message) {
        long v = Numbers.unsigned(text, max);
        if (v < 0) {
            throw new CliException(null, message);
        }
        return v;
    }
}
