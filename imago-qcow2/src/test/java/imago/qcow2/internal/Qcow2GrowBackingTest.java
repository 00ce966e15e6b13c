package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
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
 * Growing an image whose backing file is longer than it (QEMU's bdrv_co_truncate with BDRV_REQ_ZERO_WRITE):
 * the new area reads as zero rather than as the backing file, whatever the last cluster held (data,
 * nothing, compressed, shared with a snapshot), and qemu-img check stays clean.
 */
class Qcow2GrowBackingTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    static int counter;

    private static Path base(long size) throws IOException {
        Path base = dir.resolve("base" + counter++ + ".raw");
        byte[] data = new byte[(int) size];
        new Random(size).nextBytes(data);
        Files.write(base, data);
        return base;
    }

    private static Path overlay(Path base, String options, long size) throws IOException {
        Path img = dir.resolve("o" + counter++ + ".qcow2");
        CreateOptions.Builder b = CreateOptions.builder().size(size).backingFile(base.getFileName().toString())
                .backingFormat("raw");
        Qcow2CreateTest.parse(options).forEach(b::option);
        Imago.create(img, "qcow2", b.build());
        return img;
    }

    @ParameterizedTest(name = "{0} {1} {2} -> {3}")
    @CsvSource({"compat=1.1, data, 1024000, 3145728", "compat=1.1, none, 1024000, 3145728",
            "compat=1.1, compressed, 1024000, 6291456", "compat=1.1, snapshot, 1024000, 2097152",
            "'compat=1.1,extended_l2=on', data, 1024000, 3145728",
            "'compat=1.1,extended_l2=on', none, 1000448, 3145728",
            "'compat=1.1,extended_l2=on', compressed, 1024000, 3145728",
            "'compat=1.1,extended_l2=on', snapshot, 1024000, 3145728",
            "'compat=1.1,cluster_size=512', none, 1000448, 1001472",
            "'compat=1.1,cluster_size=4096', snapshot, 1000448, 4194304",
            "compat=0.10, data, 1024000, 1048576", "compat=0.10, none, 1000448, 1048576"})
    void theNewAreaReadsAsZero(String options, String tail, long oldSize, long newSize) throws IOException {
        Path base = base(4 << 20);
        Path img = overlay(base, options, oldSize);
        byte[] below = Files.readAllBytes(base);
        byte[] model = Arrays.copyOf(Arrays.copyOf(below, (int) oldSize), (int) newSize);
        Random r = new Random(oldSize ^ newSize ^ options.hashCode() ^ tail.hashCode());
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            int cs = image.info().clusterSize().orElseThrow();
            long lastCluster = (oldSize - 1) & -(long) cs;
            Qcow2WriteTest.write(image, model, 0, 5000, r);
            switch (tail) {
                case "data" -> Qcow2WriteTest.write(image, model, oldSize - 700, 700, r);
                case "compressed" -> {
                    // the partial last cluster, compressed
                    byte[] text = new byte[(int) (oldSize - lastCluster)];
                    Arrays.fill(text, (byte) 'x');
                    image.writeCompressed(ByteBuffer.wrap(text), lastCluster);
                    System.arraycopy(text, 0, model, (int) lastCluster, text.length);
                }
                case "snapshot" -> {
                    Qcow2WriteTest.write(image, model, lastCluster, (int) (oldSize - lastCluster), r);
                    image.createSnapshot("before");
                }
                default -> { }
            }
            image.resize(newSize, Preallocation.OFF);
            assertEquals(newSize, image.size());
            Qcow2WriteTest.assertReads(image, model);
        }
        Qcow2PreallocationTest.verify(img, model);
    }

    /**
     * Extended L2 entries: after shrinking into a cluster whose last subcluster before the new end holds
     * nothing while later ones hold data, growing again shows zeroes there, not the old data; and a tail
     * cluster shared with a snapshot keeps showing a shorter backing file where its subclusters are
     * unallocated.
     */
    @ParameterizedTest(name = "backing file {0}, snapshot {1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void extendedL2TailSubclustersReadAsZeroAfterGrowing(boolean backed, boolean snapshot) throws IOException {
        Path img;
        byte[] model = new byte[1 << 20];
        if (backed) {
            Path base = base(200_000); // ends inside the tail cluster
            img = overlay(base, "compat=1.1,extended_l2=on", 1 << 20);
            System.arraycopy(Files.readAllBytes(base), 0, model, 0, 200_000);
        } else {
            img = dir.resolve("x" + counter++ + ".qcow2");
            Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).option("extended_l2", "on").build());
        }
        long shrinkTo = 196608 + 4096; // 64 KiB clusters, 2 KiB subclusters: subcluster 2 of cluster 3
        Random r = new Random(7);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            // data in the subclusters before and well after the new end, none in the one the end falls into
            Qcow2WriteTest.write(image, model, 196608, 2048, r);
            Qcow2WriteTest.write(image, model, 196608 + 10240, 20000, r);
            if (snapshot) {
                image.createSnapshot("s");
            }
            image.resize(shrinkTo, Preallocation.OFF);
            image.resize(1 << 20, Preallocation.OFF);
        }
        byte[] expected = Arrays.copyOf(Arrays.copyOf(model, (int) shrinkTo), 1 << 20);
        if (backed) {
            // past the old end the backing file does not show (it ends before the new size, after the old one)
            Arrays.fill(expected, (int) shrinkTo, 1 << 20, (byte) 0);
        }
        try (Image image = Imago.opener().path(img).format("qcow2").open()) {
            Qcow2WriteTest.assertReads(image, expected);
        }
        Qcow2PreallocationTest.verify(img, expected);
    }

    @Test
    void withoutTheBackingFileOpenGrowingIsRefusedAndNothingChanges() throws IOException {
        Path base = base(4 << 20);
        Path img = overlay(base, "compat=1.1", 1 << 20);
        byte[] before = Files.readAllBytes(img);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).noBacking().open()) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(2 << 20, Preallocation.OFF));
            assertEquals("qcow2 resize with backing file", e.featureName());
            assertEquals(1 << 20, image.size());
        }
        assertEquals(Arrays.hashCode(before), Arrays.hashCode(Files.readAllBytes(img)));
    }

    @Test
    void aV2ImageCannotZeroPastItsLastClusterAsInQemu() throws IOException {
        Path base = base(4 << 20);
        Path img = overlay(base, "compat=0.10", 1000 << 10);
        byte[] before = Files.readAllBytes(img);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(2 << 20, Preallocation.OFF));
            assertEquals("qcow2 v2 zero clusters", e.featureName());
            assertEquals(1000 << 10, image.size());
        }
        assertEquals(Arrays.hashCode(before), Arrays.hashCode(Files.readAllBytes(img)));
    }

    @Test
    void aShorterBackingFileNeedsNoZeroes() throws IOException {
        Path base = base(1 << 20);
        Path img = overlay(base, "compat=0.10", 2 << 20);
        byte[] model = Arrays.copyOf(Files.readAllBytes(base), 5 << 20);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(5 << 20, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, model);
        }
        Qcow2PreallocationTest.verify(img, model);
    }
}
