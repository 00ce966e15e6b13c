package imago.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The image files the read benchmarks share, made with qemu-img once and reused by later forks and
 * runs: {@code full.raw} (every byte written, base64 text of random bytes, so that it compresses to
 * about 3/4 like ordinary data rather than to nothing), {@code full.qcow2} (fully allocated,
 * {@code qemu-img convert -O qcow2}), and {@code zlib.qcow2} / {@code zstd.qcow2}
 * ({@code qemu-img convert -c} with that compression type). The directory is
 * {@code $IMAGO_BENCH_DIR}, or {@code $TMPDIR/imago-bench-<size>M}. {@code benchmarks/compare}
 * makes the same files the same way.
 */
final class BenchImages {
    private BenchImages() {
    }

    /** The variants: file name stem and the format to open it with. */
    enum Variant {
        RAW("full.raw", "raw"),
        QCOW2("full.qcow2", "qcow2"),
        ZLIB("zlib.qcow2", "qcow2"),
        ZSTD("zstd.qcow2", "qcow2");

        final String file;
        final String format;

        Variant(String file, String format) {
            this.file = file;
            this.format = format;
        }

        /** The variant named by a JMH parameter or command-line word (raw, qcow2, zlib, zstd). */
        static Variant of(String name) {
            return valueOf(name.toUpperCase(java.util.Locale.ROOT));
        }
    }

    /** The directory for images of {@code sizeMiB}. */
    static Path dir(long sizeMiB) {
        String env = System.getenv("IMAGO_BENCH_DIR");
        if (env != null && !env.isEmpty()) {
            return Path.of(env);
        }
        return Path.of(System.getProperty("java.io.tmpdir"), "imago-bench-" + sizeMiB + "M");
    }

    /** The file of {@code variant} at {@code sizeMiB}, made first if missing. */
    static synchronized Path ensure(Variant variant, long sizeMiB) throws IOException, InterruptedException {
        Path dir = dir(sizeMiB);
        Files.createDirectories(dir);
        Path raw = dir.resolve(Variant.RAW.file);
        if (!Files.exists(raw)) {
            Path tmp = dir.resolve("full.raw.tmp");
            long size = sizeMiB << 20;
            // base64 turns 3 random bytes into 4 characters: 6 bits of entropy per byte, never zero
            run("sh", "-c", "head -c " + (size / 4 * 3 + 3) + " /dev/urandom | base64 -w 0 > '" + tmp + "' && "
                    + "truncate -s " + size + " '" + tmp + "'");
            Files.move(tmp, raw, StandardCopyOption.ATOMIC_MOVE);
        }
        Path file = dir.resolve(variant.file);
        if (!Files.exists(file)) {
            Path tmp = dir.resolve(variant.file + ".tmp");
            switch (variant) {
                case QCOW2 -> run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), tmp.toString());
                case ZLIB, ZSTD -> run("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o",
                        "compression_type=" + variant.name().toLowerCase(java.util.Locale.ROOT), raw.toString(),
                        tmp.toString());
                case RAW -> throw new IllegalStateException("made above");
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        }
        // into the page cache, so that every measurement starts from the same state
        run("sh", "-c", "cat '" + file + "' > /dev/null");
        return file;
    }

    private static void run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(List.of(command)).inheritIO().start();
        int rc = p.waitFor();
        if (rc != 0) {
            throw new IOException(String.join(" ", command) + " failed with exit status " + rc);
        }
    }
}
