package imago.benchmarks;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.cli.convert.Converter;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The warm library path, timed in-process for {@code benchmarks/compare}: the same work a qemu-img
 * command does, run until the JIT has settled, then timed three times. Prints one line,
 * {@code <best seconds> <run1>,<run2>,<run3>}, on standard output.
 *
 * <pre>
 *   SideBySide bench FMT FILE COUNT SIZE STEP   # = qemu-img bench -f FMT -c COUNT -d 1 -s SIZE -S STEP FILE
 *   SideBySide convert FMT SRC DST [OUTFMT]     # = qemu-img convert -f FMT -O OUTFMT SRC DST (default raw)
 *   SideBySide convert FMT SRC DST qcow2 TYPE    # = qemu-img convert -c -f FMT -O qcow2 -o compression_type=TYPE
 *   SideBySide convert FMT SRC DST vmdk SUBFMT   # = qemu-img convert -f FMT -O vmdk -o subformat=SUBFMT
 *                                                #   (streamOptimized: compressed, in one ordered pass)
 *   SideBySide write FILE COUNT SIZE STEP NEW    # = qemu-img bench -w --pattern=0xab -f qcow2 -c COUNT -d 1
 *                                                #   -s SIZE -S STEP FILE, FILE made anew (empty, NEW bytes)
 *                                                #   before each run when NEW &gt; 0
 * </pre>
 *
 * {@code write} writes like {@code qemu-img bench -w -d 1}: one request at a time, the same offsets as
 * {@code bench}, every byte 0xab; as qemu-img bench's reported time, the final flush and close are left
 * out of the timing (they happen before the next run). With NEW &gt; 0 every run starts from a new empty
 * qcow2 image, so that every write allocates; with NEW = 0 the writes go to FILE as it is (e.g. an
 * allocated copy, so that they are in place).
 *
 * {@code bench} reads like {@code qemu-img bench -d 1}: one request at a time, at 0, STEP, 2 STEP,
 * ... modulo the image size, through {@link Image#read}. {@code convert} creates DST (OUTFMT, raw by
 * default), opens it and copies with the CLI's own {@link Converter} (4 tasks, 4 KiB sparse detection),
 * as {@code imago convert} does, minus the JVM start-up; with a compression TYPE it creates a qcow2 with
 * that {@code compression_type} and copies with {@link Converter#compressing} (twice the cores in tasks,
 * or {@code -Dcompressors=N}), as {@code imago convert -c} does. The previous output is deleted before each run, outside the timing;
 * everything else, the final flush and close included, is timed. {@code Converter.run()} ends with a
 * flush, and {@link Image#close()} of a writable image flushes too; both sync the target (fdatasync of the
 * whole output) unless it is opened with {@code Opener.noSync(true)}, as {@code imago convert -t unsafe}
 * does. {@code qemu-img convert}'s default target cache mode, {@code unsafe}, never syncs, so
 * {@code -Dsync=false} (what {@code benchmarks/compare} uses) opens the target so to do the same work;
 * with {@code -Dsync=true} (the default here) it is synced, which is the work of
 * {@code qemu-img convert -t writeback}. Warm-up: at least 2 runs and at least
 * {@code -Dwarmup=SECONDS} (default 5) seconds.
 */
public final class SideBySide {
    private static final boolean SYNC = Boolean.parseBoolean(System.getProperty("sync", "true"));
    /** As {@code imago convert -c}: twice the cores, so that reads overlap compression; -Dcompressors=N to try others. */
    private static final int COMPRESSORS = Integer.getInteger("compressors", 2 * Runtime.getRuntime().availableProcessors());
    private static String phases;

    private SideBySide() {
    }

    private interface Work {
        void run() throws Exception;

        /** Untimed, before each run: e.g. deletes the previous output (freeing 1 GiB of page cache). */
        default void prepare() throws Exception {
        }

        /** Untimed, after the last run: closes what the runs left open. */
        default void finish() throws Exception {
        }
    }

    /**
     * Runs one workload.
     *
     * @param args see the class comment
     * @throws Exception if the workload fails
     */
    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage();
        }
        Work work = switch (args[0]) {
            case "bench" -> {
                if (args.length != 6) {
                    usage();
                }
                yield bench(args[1], Path.of(args[2]), Integer.parseInt(args[3]), size(args[4]), size(args[5]));
            }
            case "convert" -> {
                if (args.length < 4 || args.length > 6) {
                    usage();
                }
                yield convert(args[1], Path.of(args[2]), Path.of(args[3]), args.length >= 5 ? args[4] : "raw",
                        args.length == 6 ? args[5] : null);
            }
            case "write" -> {
                if (args.length != 6) {
                    usage();
                }
                yield write(Path.of(args[1]), Integer.parseInt(args[2]), size(args[3]), size(args[4]),
                        Long.parseLong(args[5]));
            }
            default -> {
                usage();
                yield null;
            }
        };
        double warmup = Double.parseDouble(System.getProperty("warmup", "5"));
        long warmEnd = System.nanoTime() + (long) (warmup * 1e9);
        for (int i = 0; i < 2 || System.nanoTime() < warmEnd; i++) {
            work.prepare();
            work.run();
        }
        List<String> runs = new ArrayList<>();
        double best = Double.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            work.prepare();
            long cpu0 = cpuNanos();
            long t0 = System.nanoTime();
            work.run();
            double s = (System.nanoTime() - t0) / 1e9;
            double cpu = (cpuNanos() - cpu0) / 1e9;
            best = Math.min(best, s);
            runs.add(String.format(Locale.ROOT, "%.3f", s));
            // CPU time of the whole process (all threads, JIT and GC included): steadier than wall time
            // on a machine shared with other work
            System.err.println(String.format(Locale.ROOT, "run %d: %.3f s, process CPU %.3f s%s", i + 1, s, cpu,
                    phases == null ? "" : "; " + phases));
        }
        work.finish();
        System.out.println(String.format(Locale.ROOT, "%.3f", best) + " " + String.join(",", runs));
    }

    private static Work bench(String format, Path file, int count, int size, long step) throws IOException {
        Image image = Imago.opener().path(file).format(format).open(); // stays open until exit
        ByteBuffer buf = ByteBuffer.allocateDirect(size);
        long imageSize = image.size();
        return () -> {
            long off = 0;
            for (int i = 0; i < count; i++) {
                image.read(buf.clear(), off);
                off = Long.remainderUnsigned(off + step, imageSize);
            }
        };
    }

    private static Work write(Path file, int count, int size, long step, long fresh) {
        ByteBuffer buf = ByteBuffer.allocateDirect(size);
        while (buf.hasRemaining()) {
            buf.put((byte) 0xab);
        }
        return new Work() {
            private Image image;

            @Override
            public void prepare() throws IOException {
                if (image != null) {
                    image.close(); // flushes and syncs: untimed, as qemu-img bench's final flush
                    image = null;
                }
                if (fresh > 0) {
                    Files.deleteIfExists(file);
                    Imago.create(file, "qcow2", CreateOptions.ofSize(fresh));
                }
                image = Imago.opener().path(file).format("qcow2").writable(true).open();
            }

            @Override
            public void finish() throws IOException {
                image.close();
            }

            @Override
            public void run() throws IOException {
                long imageSize = image.size();
                long off = 0;
                for (int i = 0; i < count; i++) {
                    image.write(buf.clear(), off);
                    off = Long.remainderUnsigned(off + step, imageSize);
                }
            }
        };
    }

    private static Work convert(String format, Path src, Path dst, String outFormat, String compression)
            throws IOException {
        Image source = Imago.opener().path(src).format(format).open(); // stays open until exit
        boolean vmdk = outFormat.equals("vmdk");
        CreateOptions options = compression == null ? CreateOptions.ofSize(source.size())
                : CreateOptions.builder().size(source.size())
                        .option(vmdk ? "subformat" : "compression_type", compression).build();
        // vmdk compresses only streamOptimized, which it must (it only appends), as imago convert does
        boolean compressed = compression != null && (!vmdk || compression.equals("streamOptimized"));
        return new Work() {
            @Override
            public void prepare() throws IOException {
                Files.deleteIfExists(dst);
            }

            @Override
            public void run() throws IOException {
                long t0 = System.nanoTime();
                Imago.create(dst, outFormat, options);
                Image out = Imago.opener().path(dst).format(outFormat).writable(true).noSync(!SYNC).open();
                long t1 = System.nanoTime();
                Converter converter = !compressed
                        ? new Converter(source, out, Converter.DEFAULT_MIN_SPARSE, 4, bytes -> { })
                        : Converter.compressing(source, out, Converter.DEFAULT_MIN_SPARSE, COMPRESSORS, bytes -> { },
                                out.info().clusterSize().orElseThrow());
                converter.run();
                long t2 = System.nanoTime();
                out.close();
                long t3 = System.nanoTime();
                String synced = SYNC ? "(sync)" : "(no sync)";
                phases = String.format(Locale.ROOT, "create+open %.3f s, copy+flush%s %.3f s, close%s %.3f s",
                        (t1 - t0) / 1e9, synced, (t2 - t1) / 1e9, synced, (t3 - t2) / 1e9);
            }
        };
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static int size(String s) {
        String t = s.toUpperCase(Locale.ROOT);
        long unit = 1;
        switch (t.charAt(t.length() - 1)) {
            case 'K' -> unit = 1L << 10;
            case 'M' -> unit = 1L << 20;
            case 'G' -> unit = 1L << 30;
            default -> t = t + " ";
        }
        return Math.toIntExact(Long.parseLong(t.substring(0, t.length() - 1).trim()) * unit);
    }

    private static void usage() {
        System.err.println("usage: SideBySide bench FMT FILE COUNT SIZE STEP"
                + " | SideBySide convert FMT SRC DST [OUTFMT [zlib|zstd|VMDK_SUBFORMAT]]"
                + " | SideBySide write FILE COUNT SIZE STEP NEW");
        System.exit(2);
    }
}
