package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Allocating writes from many threads at once keep every byte, and leave a count qemu-img finds right. */
class VdiWriteTest {

    @Test
    void concurrentAllocatingWritesKeepEveryByte(@TempDir Path dir) throws Exception {
        Path image = dir.resolve("threads.vdi");
        int block = 1 << 20;
        long size = 16L * block;
        Imago.create(image, "vdi", CreateOptions.builder().size(size).build());
        byte[] model = new byte[(int) size];
        try (Image img = Imago.opener().path(image).writable(true).open();
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 2; i++) {
                        long at = (long) (i * 8 + thread) * block + 4096L * thread;
                        byte[] data = new byte[5000];
                        Arrays.fill(data, (byte) (thread * 16 + i + 1));
                        img.write(ByteBuffer.wrap(data), at);
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
        try (Image img = Imago.opener().path(image).open()) {
            assertArrayEquals(model, QemuReads.readAll(img));
        }
        if (Qemu.knowsFormat("vdi")) {
            Files.write(dir.resolve("model.raw"), model);
            Qemu.Output check = Qemu.check(image, "vdi");
            assertEquals(0, check.status(), check.err());
            assertEquals(0, Qemu.compare(image, "vdi", dir.resolve("model.raw"), "raw").status());
        }
    }
}
