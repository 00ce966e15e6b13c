package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.DirtyRun;
import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Image#dirtyRun}: the runs of a persistent bitmap, walked over the whole image, give back every bit that
 * qemu-io's writes set (decoded from the file independently), on a read-only open and, with imago's own writes
 * added, on a writable one; an inconsistent bitmap is refused.
 */
class Qcow2DirtyRunTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
        // the bitmap write test's image builder works in its own directory field
        Qcow2BitmapWriteTest.dir = dir;
    }

    @Test
    void runsGiveBackTheStoredBitsAndTheWritesSinceTheOpen() throws IOException {
        // 4 KiB clusters: a 512-byte granularity over 8 MiB spans several clusters of bitmap data
        var layout = new Qcow2BitmapWriteTest.Layout("cluster_size=4096", 8L << 20,
                List.of("fine:512", "coarse:65536", "off:4096:disabled"), false);
        Path img = Qcow2BitmapWriteTest.build(layout);
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2",
                List.of("write -P 1 3M 5000", "write -z 5M 600k", "discard 7M 4k", "write -P 2 8387584 512"));
        List<Qcow2BitmapWriteTest.Decoded> stored = Qcow2BitmapWriteTest.decode(Files.readAllBytes(img));

        try (Image image = Imago.opener().path(img).open()) {
            assertEquals(List.of("fine", "coarse", "off"), image.dirtyBitmaps());
            for (var d : stored) {
                assertEquals(d.bits(), walk(image, d.name(), d.granularityBits()), d.name());
            }
            assertThrows(IllegalArgumentException.class, () -> image.dirtyRun("nope", 0, 1));
        }

        try (Image image = Imago.opener().path(img).writable(true).open()) {
            image.write(ByteBuffer.allocate(3000), 6L << 20);
            for (var d : stored) {
                BitSet expected = (BitSet) d.bits().clone();
                if (!d.name().equals("off")) {
                    int g = d.granularityBits();
                    expected.set((int) ((6L << 20) >>> g), (int) (((6L << 20) + 2999) >>> g) + 1);
                }
                assertEquals(expected, walk(image, d.name(), d.granularityBits()), d.name());
            }
        }
    }

    @Test
    void anInconsistentBitmapIsRefused() throws IOException {
        var layout = new Qcow2BitmapWriteTest.Layout("cluster_size=4096", 4L << 20,
                List.of("stale:4096:inuse", "live:512"), false);
        Path img = Qcow2BitmapWriteTest.build(layout);
        try (Image image = Imago.opener().path(img).open()) {
            var e = assertThrows(UnsupportedFeatureException.class, () -> image.dirtyRun("stale", 0, 4096));
            assertEquals(Feature.PERSISTENT_BITMAPS, e.feature());
            assertTrue(e.getMessage().contains("Bitmap 'stale' is inconsistent"), e.getMessage());
            DirtyRun run = image.dirtyRun("live", 0, image.size());
            assertEquals(0, run.offset());
        }
    }

    /** The bits of bitmap {@code name}, rebuilt from its runs, which must tile the image. */
    private static BitSet walk(Image image, String name, int granularityBits) throws IOException {
        BitSet bits = new BitSet();
        long pos = 0;
        while (pos < image.size()) {
            DirtyRun r = image.dirtyRun(name, pos, image.size() - pos);
            assertEquals(pos, r.offset());
            assertTrue(r.length() > 0 && r.length() <= image.size() - pos);
            if (r.dirty()) {
                bits.set((int) (pos >>> granularityBits), (int) ((pos + r.length() - 1) >>> granularityBits) + 1);
            }
            pos += r.length();
        }
        return bits;
    }
}
