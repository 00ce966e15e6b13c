package imago.vdi.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.ConcurrentWriteTest;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.nio.file.Path;
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
        byte[] model;
        try (Image img = Imago.opener().path(image).writable(true).open()) {
            model = ConcurrentWriteTest.writeInterleavedUnits(img, size, block, 2, 5000, 4096);
        }
        try (Image img = Imago.opener().path(image).open()) {
            assertArrayEquals(model, QemuReads.readAll(img));
        }
        if (Qemu.knowsFormat("vdi")) {
            QemuWorkloads.assertQemuFindsModel(image, "vdi", model);
        }
    }
}
