package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.StorageLocation;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Eight virtual threads write interleaved stripes of one new image at once (allocating writes racing each other and
 * in-place writes into clusters another thread allocated): the image reads as the model, and qemu-img finds the same
 * bytes and, where imago has a check for the format, a clean file (qemu-img has none exactly where imago has none).
 * A format's test extends this class and names the format; {@link #writeInterleavedUnits} serves tests of their own:
 *
 * <pre>{@code
 * class QedConcurrentWriteTest extends ConcurrentWriteTest {
 *     QedConcurrentWriteTest() {
 *         super("qed");
 *     }
 * }
 * }</pre>
 */
public abstract class ConcurrentWriteTest {
    private static final long SIZE = 8L << 20;
    /** Not a cluster of any format: neighbouring stripes share clusters. */
    private static final int STRIPE = 3000;
    private static final int THREADS = 8;

    @TempDir
    Path dir;

    private final String format;

    /** The test for {@code format}, on images of default create options. */
    protected ConcurrentWriteTest(String format) {
        this.format = Objects.requireNonNull(format, "format");
    }

    /**
     * Eight virtual threads write into {@code image} at once, each {@code writesPerThread} runs of {@code length}
     * bytes: thread {@code t}'s {@code i}-th run fills byte {@code 16 t + i + 1} at the start of allocation unit
     * {@code 8 i + t} (units of {@code unit} bytes) plus {@code t * skew}, so that the threads allocate units side by
     * side and race for the allocation order.
     *
     * @return the guest content they leave on an image of {@code size} bytes that read as zero before
     */
    public static byte[] writeInterleavedUnits(Image image, long size, long unit, int writesPerThread, int length,
            long skew) throws Exception {
        byte[] model = new byte[Math.toIntExact(size)];
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (int i = 0; i < writesPerThread; i++) {
                        long at = (long) (i * THREADS + thread) * unit + skew * thread;
                        byte[] data = new byte[length];
                        Arrays.fill(data, (byte) (thread * 16 + i + 1));
                        image.write(ByteBuffer.wrap(data), at);
                        synchronized (model) {
                            System.arraycopy(data, 0, model, (int) at, data.length);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        }
        return model;
    }

    @Test
    void concurrentWritesKeepEveryByte() throws Exception {
        Path file = dir.resolve("c." + format);
        ProbeApi.create(StorageLocation.file(file), format, CreateOptions.builder().size(SIZE).build());
        assertEquals(format, ProbeApi.probe(file), "the new image probes as its format");
        byte[] model = new byte[(int) SIZE];
        new Random(5).nextBytes(model);
        boolean imagoChecks;
        try (Image image = ProbeApi.open(StorageLocation.file(file), format, true);
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (long at = (long) thread * STRIPE; at < SIZE; at += (long) THREADS * STRIPE) {
                        int n = (int) Math.min(STRIPE, SIZE - at);
                        image.write(ByteBuffer.wrap(model, (int) at, n), at);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            image.flush();
            byte[] back = QemuReads.readAll(image);
            assertEquals(-1, Arrays.mismatch(model, back), "first differing byte");
            imagoChecks = image.supports(Feature.CHECK);
        }
        Path raw = Files.write(dir.resolve("model.raw"), model);
        Qemu.Output compare = Qemu.compare(file, format, raw, "raw");
        assertEquals(0, compare.status(), () -> "qemu-img compare with the model\n" + compare.out() + compare.err());
        Qemu.Output check = Qemu.check(file, format);
        assertEquals(imagoChecks ? 0 : 63, check.status(), () -> "qemu-img check (imago "
                + (imagoChecks ? "checks" : "has no check for") + " " + format + ")\n" + check.out() + check.err());
    }
}
