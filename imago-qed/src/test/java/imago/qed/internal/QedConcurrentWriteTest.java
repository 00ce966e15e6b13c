package imago.qed.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Eight virtual threads write interleaved stripes of one image at once (allocating writes racing each other and
 * in-place writes into clusters another thread allocated): the image reads as the model, and qemu-img finds the
 * same bytes and a clean file.
 */
class QedConcurrentWriteTest {
    @TempDir
    Path dir;

    @Test
    void concurrentWritesKeepEveryByte() throws Exception {
        long size = 8L << 20;
        int stripe = 3000; // not a cluster: neighbouring stripes share clusters
        Path file = dir.resolve("c.qed");
        Imago.create(file, "qed", CreateOptions.builder().size(size).build());
        byte[] model = new byte[(int) size];
        new Random(5).nextBytes(model);
        try (Image image = Imago.opener().path(file).writable(true).open();
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (long at = (long) thread * stripe; at < size; at += 8L * stripe) {
                        int n = (int) Math.min(stripe, size - at);
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
            assertEquals(-1, java.util.Arrays.mismatch(model, back), "first differing byte");
        }
        Path raw = Files.write(dir.resolve("model.raw"), model);
        assertEquals(0, Qemu.compare(file, "qed", raw, "raw").status());
        if ("qed".equals("qed")) {
            assertEquals(0, Qemu.check(file, "qed").status());
        }
    }
}
