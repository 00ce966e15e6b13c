package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Resizing an image with an external data file: the data file follows the image (exact size, or the end of
 * the last new cluster when preallocating), the image reads as the model after every step and after
 * reopening, qemu-img check stays clean, and a raw data file holds exactly the guest's bytes.
 */
class Qcow2DataFileResizeTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    static int counter;

    @ParameterizedTest(name = "data_file_raw={0} {1}")
    @CsvSource({"off, cluster_size=65536", "on, cluster_size=65536", "off, cluster_size=4096",
            "on, cluster_size=512"})
    void growAndShrinkFollowTheModel(String raw, String options) throws IOException {
        int n = counter++;
        Path img = dir.resolve("d" + n + ".qcow2");
        Path data = dir.resolve("d" + n + ".bin");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options + ",data_file=" + data.getFileName()
                + ",data_file_raw=" + raw, img, "1000K");
        Random r = new Random(n * 31L + raw.hashCode());
        byte[] model = new byte[1000 << 10];
        long[] sizes = {3000 << 10, 512_000, 2 << 20, 1001 << 10, 4 << 20, 6 << 20};
        Preallocation[] modes = {Preallocation.OFF, Preallocation.OFF, Preallocation.METADATA, Preallocation.OFF,
            Preallocation.FULL, Preallocation.FALLOC};
        for (int step = 0; step < sizes.length; step++) {
            try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
                for (int i = 0; i < 10; i++) {
                    int length = 1 + r.nextInt(Math.min(model.length, 200_000));
                    long offset = (long) (r.nextDouble() * (model.length - length + 1));
                    Qcow2WriteTest.write(image, model, offset, length, r);
                }
                image.resize(sizes[step], modes[step]);
                model = Arrays.copyOf(model, (int) sizes[step]);
                Qcow2WriteTest.assertReads(image, model);
            }
            Qcow2PreallocationTest.verify(img, model);
            if (raw.equals("on")) {
                byte[] file = Files.readAllBytes(data);
                assertArrayEquals(model, Arrays.copyOf(file, model.length), "the raw data file is the guest's disk");
            }
            if (modes[step] == Preallocation.OFF && raw.equals("off")) {
                assertEquals(sizes[step], Files.size(data), "the data file takes the new size");
            }
        }
    }

    /** Preallocation with extended L2 entries is refused before anything changes (imago cannot do it yet). */
    @Test
    void preallocationWithExtendedL2IsRefused() throws IOException {
        Path img = dir.resolve("xl2.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).option("extended_l2", "on").build());
        byte[] before = Files.readAllBytes(img);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(3 << 20, Preallocation.METADATA));
            assertEquals("qcow2 preallocation", e.feature());
            assertEquals(1 << 20, image.size());
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }

    @Test
    void preallocationWithADataFileAndABackingFileIsRefused() throws IOException {
        Path base = dir.resolve("pb.raw");
        Files.write(base, new byte[1 << 20]);
        Path img = dir.resolve("pb.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).backingFile("pb.raw").backingFormat("raw")
                .option("data_file", "pb.bin").build());
        byte[] before = Files.readAllBytes(img);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(2 << 20, Preallocation.METADATA));
            assertEquals("qcow2 preallocation", e.feature());
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }
}
