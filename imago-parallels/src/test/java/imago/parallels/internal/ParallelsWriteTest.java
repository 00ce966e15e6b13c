package imago.parallels.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.ConcurrentWriteTest;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuWorkloads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The in-use mark's life, and allocating writes from many threads at once. */
class ParallelsWriteTest {

    private static int inUse(Path image) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, ParallelsHeader.IN_USE_AT);
            return b.getInt(0);
        }
    }

    @Test
    void theInUseMarkIsSetWhileWritableAndClearedByTheClose(@TempDir Path dir) throws IOException {
        Path image = dir.resolve("mark.hds");
        Imago.create(image, "parallels", CreateOptions.builder().size(4 << 20).build());
        try (Image img = Imago.opener().path(image).open()) {
            assertEquals(4 << 20, img.size());
            assertEquals(0, inUse(image), "a read-only open leaves the mark alone");
        }
        try (Image img = Imago.opener().path(image).writable(true).open()) {
            assertEquals(ParallelsHeader.IN_USE, inUse(image), "set (and synced) by the writable open");
            img.write(ByteBuffer.wrap(new byte[] {1}), 0);
            img.flush();
            assertEquals(ParallelsHeader.IN_USE, inUse(image), "still set after a flush");
        }
        assertEquals(0, inUse(image), "cleared by the clean close");
    }

    @Test
    void concurrentAllocatingWritesKeepEveryByte(@TempDir Path dir) throws Exception {
        Path image = dir.resolve("threads.hds");
        int cluster = 64 << 10;
        long size = 64L * cluster;
        Imago.create(image, "parallels", CreateOptions.builder().size(size).option("cluster_size", "64k").build());
        byte[] model;
        try (Image img = Imago.opener().path(image).writable(true).open()) {
            // threads interleave across clusters: each writes 3000 bytes in every 8th cluster
            model = ConcurrentWriteTest.writeInterleavedUnits(img, size, cluster, 8, 3000, 1000);
        }
        try (Image img = Imago.opener().path(image).open()) {
            assertArrayEquals(model, QemuReads.readAll(img));
        }
        if (Qemu.knowsFormat("parallels")) {
            QemuWorkloads.assertQemuFindsModel(image, "parallels", model);
        }
    }
}
