package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
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
 * Shrinking ({@code qemu-img resize --shrink}): the clusters past the new end are freed (check clean, no
 * leaks), the file is cut after the last cluster in use, and the image reads as the truncated model, also
 * after growing again (the bytes past the old end read as zero).
 */
class Qcow2ShrinkTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    static int counter;

    @ParameterizedTest(name = "{0} {1} -> {2}")
    @CsvSource({"cluster_size=65536, 33554432, 4194816", "cluster_size=512, 4194304, 66048",
            "'cluster_size=512,refcount_bits=1', 2097152, 300032", "cluster_size=4096, 8388608, 1048576",
            "compat=0.10, 16777216, 512", "cluster_size=2M, 67108864, 2098688"})
    void shrinkFreesTheTail(String options, long size, long newSize) throws IOException {
        Random r = new Random(size ^ newSize);
        Path img = dir.resolve("s" + counter++ + ".qcow2");
        CreateOptions.Builder b = CreateOptions.builder().size(size);
        Qcow2CreateTest.parse(options).forEach(b::option);
        Imago.create(img, "qcow2", b.build());
        byte[] model = new byte[(int) size];
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int i = 0; i < 40; i++) {
                int length = 1 + r.nextInt((int) Math.min(size, 300_000));
                long offset = (long) (r.nextDouble() * (size - length + 1));
                Qcow2WriteTest.write(image, model, offset, length, r);
            }
            // a compressed cluster past the new end, and written data right at the end
            int cs = 1 << Files.readAllBytes(img)[23];
            long last = (size / cs - 1) * cs;
            image.discard(last, cs);
            byte[] text = new byte[cs];
            Arrays.fill(text, (byte) 'x');
            image.writeCompressed(ByteBuffer.wrap(text), last);
            System.arraycopy(text, 0, model, (int) last, cs);
            Qcow2WriteTest.write(image, model, size - 1000, 1000, r);
            image.resize(newSize, Preallocation.OFF);
            assertEquals(newSize, image.size());
            Qcow2WriteTest.assertReads(image, Arrays.copyOf(model, (int) newSize));
        }
        Qcow2PreallocationTest.verify(img, Arrays.copyOf(model, (int) newSize));
        long end = Long.parseLong(Qemu.ok(dir, "qemu-img", "check", img).lines()
                .filter(l -> l.startsWith("Image end offset: ")).findFirst().orElseThrow().substring(18).trim());
        assertEquals(end, Files.size(img), "the file ends after the last cluster in use");
        assertTrue(Qemu.ok(dir, "qemu-img", "info", img).contains("(" + newSize + " bytes)"));

        // growing again: what was past the new end reads as zero
        byte[] grown = Arrays.copyOf(Arrays.copyOf(model, (int) newSize), (int) size);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(size, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, grown);
            Qcow2WriteTest.write(image, grown, size - 5000, 5000, r);
        }
        Qcow2PreallocationTest.verify(img, grown);
    }

    @Test
    void refusesPreallocation() throws IOException {
        Path img = dir.resolve("prealloc.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", img, "4M");
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            assertThrows(IllegalArgumentException.class, () -> image.resize(1 << 20, Preallocation.FULL));
            assertEquals(4 << 20, image.size());
        }
    }

    /** As QEMU 7.2, which shrinks images with internal snapshots: the snapshot keeps all its data. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"cluster_size=65536", "cluster_size=512"})
    void shrinkKeepsSnapshots(String options) throws IOException {
        Path img = dir.resolve("snap" + counter++ + ".qcow2");
        Path theirs = dir.resolve("snap" + counter++ + "-qemu.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options, img, "4M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", java.util.List.of("write -P 1 0 3M",
                "write -c -P 2 3M 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", java.util.List.of("write -P 3 1M 2M"));
        Files.copy(img, theirs);
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img, "s1.raw");
        byte[] s1 = Files.readAllBytes(dir.resolve("s1.raw"));
        Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", img, "active.raw");
        byte[] active = Arrays.copyOf(Files.readAllBytes(dir.resolve("active.raw")), (3 << 20) / 2 + 512);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(active.length, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, active);
        }
        Qcow2PreallocationTest.verify(img, active);
        // and qemu-img resize does the same: the same size, the same data, the same snapshot (qemu 7.2 reads a
        // snapshot with the image's current size)
        Qemu.ok(dir, "qemu-img", "resize", "-q", "--shrink", theirs, Integer.toString(active.length));
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img, "s1-after.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", theirs, "s1-qemu.raw");
        byte[] after = Files.readAllBytes(dir.resolve("s1-after.raw"));
        assertArrayEquals(Files.readAllBytes(dir.resolve("s1-qemu.raw")), after);
        assertArrayEquals(Arrays.copyOf(s1, after.length), after);
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", img, theirs));
        assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", img)));
    }

    /** Growing after a shrink to mid-cluster zeroes the new last cluster's tail in a copy when a snapshot shares it. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"cluster_size=4096", "cluster_size=65536"})
    void regrowingKeepsASharedLastCluster(String options) throws IOException {
        Path img = dir.resolve("regrow" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options, img, "512k");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", java.util.List.of("write -P 0x8a 0 512k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
        byte[] model = new byte[512 << 10];
        Arrays.fill(model, 0, 250368, (byte) 0x8a);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(250368, Preallocation.OFF);
            image.resize(512 << 10, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, model);
        }
        Qcow2PreallocationTest.verify(img, model);
        Path applied = dir.resolve("regrow" + counter++ + "-applied.qcow2");
        Files.copy(img, applied);
        Qemu.ok(dir, "qemu-img", "snapshot", "-a", "s1", applied);
        Qemu.Output read = Qemu.run(dir, "qemu-io", "-c", "read -P 0x8a 0 512k", applied);
        assertTrue(!read.out().contains("Pattern verification failed"), read.out());
    }
    /** With extended L2 entries the old last subcluster may read as zero while later ones hold data. */
    @Test
    void regrowingZeroesTheSubclustersPastTheOldEnd() throws IOException {
        Path img = dir.resolve("regrow-ext" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=16384", img, "64k");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", java.util.List.of("write -P 5 0 64k",
                "write -z 4k 512"));
        byte[] model = new byte[64 << 10];
        Arrays.fill(model, 0, 4096, (byte) 5);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(4608, Preallocation.OFF);
            image.resize(64 << 10, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, model);
        }
        Qcow2PreallocationTest.verify(img, model);
        // and a partial last subcluster (2 KiB subclusters of 64 KiB clusters) that holds data is zeroed past the
        // old end, in place
        Path big = dir.resolve("regrow-ext" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", big, "128k");
        Qcow2DifferentialTest.qemuIo(dir, big.toString(), "qcow2", java.util.List.of("write -P 5 0 128k"));
        model = new byte[128 << 10];
        Arrays.fill(model, 0, 10752, (byte) 5);
        try (Image image = Imago.opener().path(big).format("qcow2").writable(true).open()) {
            image.resize(10752, Preallocation.OFF);
            image.resize(128 << 10, Preallocation.OFF);
            Qcow2WriteTest.assertReads(image, model);
        }
        img = big;
        Qcow2PreallocationTest.verify(img, model);
    }
}
