package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
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

    /**
     * Preallocation with an external data file and a backing file, as qemu-img 7.2 does it: the new clusters
     * point at the data file at their guest offsets; with extended L2 entries their subclusters stay
     * unallocated, and where the backing file is longer than the image the new area stays zero (zero clusters
     * keep their flag). Also at create time, which QEMU allows with extended L2 entries only.
     */
    @ParameterizedTest(name = "extended_l2={0} backing={1}")
    @CsvSource({"off,1M", "off,4M", "on,1M", "on,4M"})
    void preallocationWithADataFileAndABackingFile(String extendedL2, String backingSize) throws IOException {
        int n = counter++;
        Path base = dir.resolve("pb" + n + ".raw");
        byte[] baseBytes = new byte[(int) Qcow2CreateSpec.parseSize(backingSize, "size")];
        new Random(n).nextBytes(baseBytes);
        Files.write(base, baseBytes);
        Path ours = dir.resolve("pb" + n + ".qcow2");
        Path theirs = dir.resolve("pb" + n + "-qemu.qcow2");
        for (Path p : new Path[] {ours, theirs}) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=" + extendedL2 + ",data_file="
                    + p.getFileName() + ".bin", "-b", base.getFileName(), "-F", "raw", p, "1M");
        }
        byte[] model = Arrays.copyOf(baseBytes, 3 << 20);
        Arrays.fill(model, 1 << 20, model.length, (byte) 0);
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            Qcow2WriteTest.write(image, model, 1000, 70_000, new Random(n));
            image.resize(3 << 20, Preallocation.METADATA);
            Qcow2WriteTest.assertReads(image, model);
        }
        Files.write(dir.resolve("pb" + n + "-model.raw"), Arrays.copyOf(model, 1 << 20));
        Qemu.ok(dir, "qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", "-t", "none",
                dir.resolve("pb" + n + "-model.raw"), theirs);
        Qemu.ok(dir, "qemu-img", "resize", "-q", "--preallocation=metadata", theirs, "3M");
        assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", "--start-offset=1M",
                theirs)), QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", "--start-offset=1M", ours)));
        assertEquals(Files.size(dir.resolve(theirs.getFileName() + ".bin")),
                Files.size(dir.resolve(ours.getFileName() + ".bin")));
        Qcow2PreallocationTest.verify(ours, model);

        // create: refused without extended L2 entries (QEMU's message), done with them
        Path created = dir.resolve("pc" + n + ".qcow2");
        CreateOptions.Builder b = CreateOptions.builder().size(1 << 20).backingFile(base.getFileName().toString())
                .backingFormat("raw").preallocation(Preallocation.METADATA).option("extended_l2", extendedL2)
                .option("data_file", "pc" + n + ".bin");
        if (extendedL2.equals("off")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Imago.create(created,
                    "qcow2", b.build()));
            assertEquals("Backing file and preallocation can only be used at the same time if extended_l2 is on",
                    e.getMessage());
        } else {
            Imago.create(created, "qcow2", b.build());
            Path qemu = dir.resolve("pc" + n + "-qemu.qcow2");
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,preallocation=metadata,"
                    + "data_file=pc" + n + "-qemu.bin", "-b", base.getFileName(), "-F", "raw", qemu, "1M");
            assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", qemu)),
                    QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", created)));
            assertEquals(Files.size(dir.resolve("pc" + n + "-qemu.bin")), Files.size(dir.resolve("pc" + n + ".bin")));
            Qcow2PreallocationTest.verify(created, Arrays.copyOf(baseBytes, 1 << 20));
        }
    }

    /** data_file_raw with a backing file is refused as QEMU refuses it, with its message. */
    @Test
    void rawDataFileWithABackingFileIsRefused() throws IOException {
        Path base = dir.resolve("rb.raw");
        Files.write(base, new byte[1 << 20]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Imago.create(
                dir.resolve("rb.qcow2"), "qcow2", CreateOptions.builder().size(1 << 20).backingFile("rb.raw")
                        .backingFormat("raw").preallocation(Preallocation.METADATA).option("extended_l2", "on")
                        .option("data_file", "rb.bin").option("data_file_raw", "on").build()));
        assertEquals("Backing file and data-file-raw cannot be used at the same time", e.getMessage());
    }

    /** A raw data file with extended L2 entries: created and grown with metadata preallocation, as QEMU does. */
    @Test
    void rawDataFileWithExtendedL2IsPreallocated() throws IOException {
        Path ours = dir.resolve("rx.qcow2");
        Path theirs = dir.resolve("rx-qemu.qcow2");
        Imago.create(ours, "qcow2", CreateOptions.builder().size(200 << 10).option("extended_l2", "on")
                .option("data_file", "rx.bin").option("data_file_raw", "on").build());
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,data_file=rx-qemu.bin,"
                + "data_file_raw=on", theirs, "200K");
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            image.resize(400 << 10, Preallocation.OFF);
        }
        Qemu.ok(dir, "qemu-img", "resize", "-q", theirs, "400K");
        assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours)));
        assertEquals(Files.size(dir.resolve("rx-qemu.bin")), Files.size(dir.resolve("rx.bin")));
        byte[] model = new byte[400 << 10];
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            Qcow2WriteTest.write(image, model, 10_000, 300_000, new Random(5));
            Qcow2WriteTest.assertReads(image, model);
        }
        Qcow2PreallocationTest.verify(ours, model);
        assertArrayEquals(model, Files.readAllBytes(dir.resolve("rx.bin")), "the raw data file is the guest's disk");
    }
}
