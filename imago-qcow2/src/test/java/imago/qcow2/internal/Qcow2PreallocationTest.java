package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Preallocation on create and on growing, against qemu-img doing the same: {@code qemu-img check} clean,
 * the same allocation kinds in {@code qemu-img map} (host offsets aside), and the same class of disk usage
 * in {@code qemu-img info} (metadata only, or the whole virtual size).
 */
class Qcow2PreallocationTest {
    private static final Pattern DISK_SIZE = Pattern.compile("\"actual-size\": (\\d+)");

    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    static int counter;

    @ParameterizedTest(name = "{0} cluster_size={1} refcount_bits={2}")
    @CsvSource({"metadata,65536,16", "falloc,65536,16", "full,65536,16", "metadata,4096,16", "falloc,2M,16",
        "full,512,16", "full,512,64", "metadata,4096,64", "falloc,512,1"})
    void createLikeQemuImg(String mode, String clusterSize, String refcountBits) throws IOException {
        Path ours = dir.resolve("c" + counter++ + ".qcow2");
        Path theirs = dir.resolve("c" + counter++ + "-qemu.qcow2");
        long size = (24L << 20) + 1536;
        Imago.create(ours, "qcow2", CreateOptions.builder().size(size).preallocation(Preallocation.parse(mode))
                .option("cluster_size", clusterSize).option("refcount_bits", refcountBits).build());
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=" + mode + ",cluster_size="
                + clusterSize + ",refcount_bits=" + refcountBits, theirs, Long.toString(size));
        assertLike(ours, theirs);
        // and the data written afterwards lands in the preallocated clusters
        byte[] model = new byte[(int) size];
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            Qcow2WriteTest.write(image, model, 5_000_000, 300_000, new Random(1));
            Qcow2WriteTest.assertReads(image, model);
        }
        verify(ours, model);
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"metadata,cluster_size=65536", "falloc,cluster_size=65536", "full,cluster_size=65536",
        "metadata,cluster_size=4096", "falloc,cluster_size=512", "full,'cluster_size=512,refcount_bits=64'"})
    void growLikeQemuImg(String mode, String clusterSize) throws IOException {
        Path ours = dir.resolve("g" + counter++ + ".qcow2");
        Path theirs = dir.resolve("g" + counter++ + "-qemu.qcow2");
        long size = (10L << 20) + 1536;
        long newSize = 40L << 20;
        byte[] model = new byte[(int) newSize];
        for (Path p : new Path[] {ours, theirs}) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", clusterSize, p, Long.toString(size));
        }
        byte[] data = new byte[1 << 20];
        new Random(2).nextBytes(data);
        System.arraycopy(data, 0, model, 4 << 20, data.length);
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            image.write(ByteBuffer.wrap(data), 4 << 20);
            image.resize(newSize, Preallocation.parse(mode));
            Qcow2WriteTest.assertReads(image, model);
        }
        Files.write(dir.resolve("data.raw"), data);
        Qcow2DifferentialTest.qemuIo(dir, theirs.toString(), "qcow2", java.util.List.of("write -P 0 0 0"));
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -s " + dir.resolve("data.raw") + " 4M 1M", theirs);
        Qemu.ok(dir, "qemu-img", "resize", "-q", "--preallocation=" + mode, theirs, Long.toString(newSize));
        assertLike(ours, theirs);
        verify(ours, model);
    }

    /**
     * Extended L2 entries, as QEMU 7.2: the preallocated clusters get host clusters with all subclusters
     * unallocated (reading from the backing file, or as zero), which is why a backing file is allowed: the map
     * shows every cluster with a host offset but reading as zero or from the backing file, as qemu-img's does.
     */
    @ParameterizedTest(name = "{0} backing={1}")
    @CsvSource({"metadata,false", "metadata,true", "falloc,false", "full,true"})
    void createWithExtendedL2LikeQemuImg(String mode, boolean backing) throws IOException {
        Path ours = dir.resolve("x" + counter++ + ".qcow2");
        Path theirs = dir.resolve("x" + counter++ + "-qemu.qcow2");
        long size = (3L << 20) + 4608;
        byte[] model = new byte[(int) size];
        CreateOptions.Builder b = CreateOptions.builder().size(size).preallocation(Preallocation.parse(mode))
                .option("extended_l2", "on");
        String qemuOptions = "preallocation=" + mode + ",extended_l2=on";
        if (backing) {
            Path base = dir.resolve("xbase" + counter++ + ".raw");
            byte[] bytes = new byte[(int) size - 70_000];
            new Random(counter).nextBytes(bytes);
            Files.write(base, bytes);
            System.arraycopy(bytes, 0, model, 0, bytes.length);
            b.backingFile(base.getFileName().toString()).backingFormat("raw");
            qemuOptions += ",backing_file=" + base.getFileName() + ",backing_fmt=raw";
        }
        Imago.create(ours, "qcow2", b.build());
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", qemuOptions, theirs, Long.toString(size));
        assertLike(ours, theirs);
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            Qcow2WriteTest.assertReads(image, model);
            Qcow2WriteTest.write(image, model, 1_000_000, 300_000, new Random(3));
            Qcow2WriteTest.write(image, model, 5000, 3000, new Random(4));
            Qcow2WriteTest.assertReads(image, model);
        }
        verify(ours, model);
    }

    /** Growing with preallocation over extended L2 entries, a zero subcluster in the old last cluster included. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"metadata", "falloc"})
    void growWithExtendedL2LikeQemuImg(String mode) throws IOException {
        Path ours = dir.resolve("xg" + counter++ + ".qcow2");
        Path theirs = dir.resolve("xg" + counter++ + "-qemu.qcow2");
        long size = (1L << 20) + 102_400;
        long newSize = (3L << 20) + 1536;
        byte[] model = new byte[(int) newSize];
        for (Path p : new Path[] {ours, theirs}) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", p, Long.toString(size));
            Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 9 64k 4k", "-c", "write -z 1M 8k", p);
        }
        Arrays.fill(model, 65536, 65536 + 4096, (byte) 9);
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            image.resize(newSize, Preallocation.parse(mode));
            Qcow2WriteTest.assertReads(image, model);
        }
        Qemu.ok(dir, "qemu-img", "resize", "-q", "--preallocation=" + mode, theirs, Long.toString(newSize));
        assertLike(ours, theirs);
        verify(ours, model);
    }

    /**
     * Growing with preallocation over a backing file, as qemu-img resize 7.2 does it: one that ends inside the old
     * last cluster (whose head keeps reading the backing file's bytes) and one longer than the image (the new
     * area reads as zero: zero clusters with host clusters for metadata, ordinary data clusters for falloc and
     * full), with standard and extended L2 entries and with an external data file. The same contents, the same
     * map kinds as qemu-img's image, and a clean check.
     */
    @ParameterizedTest(name = "[{0}] {1} backing={2}")
    @CsvSource({"'',metadata,1000K", "'',falloc,4M", "'',full,1000K", "'',metadata,4M",
        "'extended_l2=on',metadata,1000K", "'extended_l2=on',falloc,4M", "'extended_l2=on',full,4M",
        "'extended_l2=on',metadata,4M", "'extended_l2=on',falloc,1000K", "'data_file=DATA',metadata,1000K",
        "'data_file=DATA',falloc,4M", "'data_file=DATA,extended_l2=on',full,4M"})
    void growOverABackingFileLikeQemuImg(String options, String mode, String backingSize) throws IOException {
        int n = counter++;
        Path base = dir.resolve("ob" + n + ".raw");
        byte[] bytes = new byte[(int) Qcow2CreateSpec.parseSize(backingSize, "size")];
        new Random(n).nextBytes(bytes);
        Files.write(base, bytes);
        Path ours = dir.resolve("ob" + n + ".qcow2");
        Path theirs = dir.resolve("ob" + n + "-qemu.qcow2");
        for (Path p : new Path[] {ours, theirs}) {
            String o = options.replace("DATA", p.getFileName() + ".bin");
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", o.isEmpty() ? "compat=1.1" : o, "-b",
                    base.getFileName(), "-F", "raw", p, "1003K");
            Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 5 100K 30K", p);
        }
        long newSize = (3L << 20) + 4096;
        try (Image image = Imago.opener().path(ours).format("qcow2").writable(true).open()) {
            image.resize(newSize, Preallocation.parse(mode));
        }
        Qemu.ok(dir, "qemu-img", "resize", "-q", "--preallocation=" + mode, theirs, Long.toString(newSize));
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs));
        assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours)));
    }

    /** check clean, the same map kinds, the same virtual size and disk usage class as qemu-img's image. */
    static void assertLike(Path ours, Path theirs) throws IOException {
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours)));
        String a = Qemu.ok(dir, "qemu-img", "info", "--output=json", ours);
        String b = Qemu.ok(dir, "qemu-img", "info", "--output=json", theirs);
        assertEquals(b.replaceAll("\"actual-size\": \\d+", "").replaceAll("\"filename\": \"[^\"]*\"", ""),
                a.replaceAll("\"actual-size\": \\d+", "").replaceAll("\"filename\": \"[^\"]*\"", ""));
        long oursUsed = diskSize(a);
        long theirsUsed = diskSize(b);
        // the same class: within a few clusters of metadata (reserved batches), or both about the virtual size
        assertTrue(Math.abs(oursUsed - theirsUsed) <= Math.max(theirsUsed / 8, 4L << 20),
                "disk size " + oursUsed + " vs qemu's " + theirsUsed);
    }

    /** qemu-img check clean (no leaks either) and compare equal to {@code model}. */
    static void verify(Path img, byte[] model) throws IOException {
        Qemu.Output check = Qemu.run(img.getParent(), "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        Qcow2WriteTest.assertQemuReadsModel(img, model);
    }

    private static long diskSize(String json) {
        Matcher m = DISK_SIZE.matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }
}
