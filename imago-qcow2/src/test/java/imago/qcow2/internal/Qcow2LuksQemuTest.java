package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Secrets;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * qcow2 with {@code encrypt.format=luks} both ways with qemu-img 7.2: what qemu-img creates and qemu-io writes, imago
 * reads byte for byte (against {@code qemu-img convert -O raw}) and writes so that qemu-img reads it; what imago
 * creates and writes, qemu-img reads ({@code qemu-img compare}) and checks clean; over a backing file; without the
 * secret the header shows and no data.
 */
class Qcow2LuksQemuTest {
    static final String PASS = "abc";
    static final String SECRET = "secret,id=sec0,data=" + PASS;

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    static String imageOpts(Path file) {
        return "driver=qcow2,encrypt.key-secret=sec0,file.filename=" + file;
    }

    static Image open(Path file, boolean writable) throws IOException {
        return Imago.opener().path(file).format("qcow2").writable(writable)
                .secret("sec0", PASS.getBytes(StandardCharsets.UTF_8)).option("encrypt.key-secret", "sec0").open();
    }

    static byte[] readAll(Image image) throws IOException {
        return QemuReads.readAll(image);
    }

    /** qemu-img create with encryption, retried as its PBKDF2 calibration needs ({@link Qemu#okDerivingKey}). */
    static void qemuCreate(Path dir, Path f, String options, String size) {
        Qemu.okDerivingKey(dir, Qemu.img(), "create", "-f", "qcow2", "--object", SECRET, "-o",
                "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
                        + (options.isEmpty() ? "" : "," + options), f, size);
    }

    /** imago's create with encryption, asked as {@link #qemuCreate} asks qemu-img (with qemu-img's options). */
    static void imagoCreate(Path f, String options, long size) throws IOException {
        CreateOptions.Builder b = CreateOptions.builder().size(size)
                .secrets(Secrets.create().put("sec0", PASS.toCharArray())).option("encrypt.format", "luks")
                .option("encrypt.key-secret", "sec0").option("encrypt.iter-time", "10");
        Qcow2CreateTest.parse(options).forEach(b::option);
        Imago.create(f, "qcow2", b.build());
    }

    /** Writes {@code count} random runs of up to 200,000 bytes at random offsets, in the image and in {@code data}. */
    static void writeRandomRuns(Image image, byte[] data, Random random, int count) throws IOException {
        for (int i = 0; i < count; i++) {
            int at = random.nextInt(data.length - 1);
            int n = 1 + random.nextInt(Math.min(data.length - at, 200_000));
            byte[] chunk = new byte[n];
            random.nextBytes(chunk);
            image.write(ByteBuffer.wrap(chunk), at);
            System.arraycopy(chunk, 0, data, at, n);
        }
    }

    /** {@code qemu-img compare} finds that {@code f} reads as {@code data}. */
    static void assertQemuReads(Path dir, Path f, byte[] data, String what) throws IOException {
        Path raw = dir.resolve("expected.raw");
        Files.write(raw, data);
        Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", SECRET, "--image-opts", imageOpts(f),
                "driver=raw,file.filename=" + raw);
        assertEquals(0, cmp.status(), what + cmp.out() + cmp.err());
    }

    static byte[] qemuRaw(Path dir, Path f) {
        return Qemu.convertToRaw(dir, "--object", SECRET, "--image-opts", imageOpts(f));
    }

    private byte[] qemuRaw(Path f) {
        return qemuRaw(dir, f);
    }

    static void assertQemuCheckClean(Path dir, Path f) {
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", SECRET, "--image-opts", imageOpts(f));
        assertEquals(0, check.status(), check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
    }

    private void assertQemuCheckClean(Path f) {
        assertQemuCheckClean(dir, f);
    }

    @Test
    void imagoReadsAndWritesWhatQemuImgCreates() throws IOException {
        for (String variant : List.of("", "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,"
                + "encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=sha1,cluster_size=4096")) {
            Path f = dir.resolve("q.qcow2");
            Files.deleteIfExists(f);
            qemuCreate(dir, f, variant, "2M");
            Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(f), "-c",
                    "write -P 0x5a 1000 70000", "-c", "write -P 0xa5 512 512", "-c", "write -P 0x11 1040000 8576");
            byte[] expected = qemuRaw(f);
            try (Image image = open(f, true)) {
                assertArrayEquals(expected, readAll(image), variant);
                byte[] data = new byte[100_000];
                new Random(variant.hashCode()).nextBytes(data);
                image.write(ByteBuffer.wrap(data), 333);
                image.write(ByteBuffer.wrap(data, 0, 4096), 512 * 1000);
                image.write(ByteBuffer.wrap(data, 5, 7), 1_500_001);
                image.flush();
                System.arraycopy(data, 0, expected, 333, data.length);
                System.arraycopy(data, 0, expected, 512 * 1000, 4096);
                System.arraycopy(data, 5, expected, 1_500_001, 7);
                assertArrayEquals(expected, readAll(image), variant + " after writes");
            }
            assertArrayEquals(expected, qemuRaw(f), variant + ": qemu-img reads imago's writes");
            assertQemuCheckClean(f);
        }
    }

    @Test
    void qemuImgReadsWhatImagoCreates() throws IOException {
        Path f = dir.resolve("i.qcow2");
        imagoCreate(f, "", 3 << 20);
        byte[] data = new byte[3 << 20];
        try (Image image = open(f, true)) {
            assertEquals(3 << 20, image.size());
            writeRandomRuns(image, data, new Random(1), 40);
            assertArrayEquals(data, readAll(image));
        }
        assertQemuReads(dir, f, data, "");
        assertQemuCheckClean(f);
        String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", f);
        assertTrue(info.contains("\"encrypted\": true"), info);
        assertTrue(info.contains("\"format\": \"luks\""), info);
        try (Image image = Imago.opener().path(f).open()) {
            @SuppressWarnings("unchecked")
            Map<String, Object> encrypt = (Map<String, Object>) image.info().formatSpecific().get("encrypt");
            assertTrue(info.contains("\"uuid\": \"" + encrypt.get("uuid") + "\""), info);
            assertTrue(info.contains("\"payload-offset\": " + encrypt.get("payload-offset")), info);
            assertTrue(info.contains("\"master-key-iters\": " + encrypt.get("master-key-iters")), info);
        }
    }

    @Test
    void writesOverABackingFileCopyOnWriteEncrypted() throws IOException {
        Path base = dir.resolve("base.raw");
        byte[] data = new byte[1 << 20];
        new Random(7).nextBytes(data);
        Files.write(base, data);
        Path f = dir.resolve("o.qcow2");
        qemuCreate(dir, f, "backing_file=" + base + ",backing_fmt=raw", "1M");
        try (Image image = open(f, true)) {
            byte[] chunk = new byte[3000];
            new Random(8).nextBytes(chunk);
            image.write(ByteBuffer.wrap(chunk), 70_001);
            System.arraycopy(chunk, 0, data, 70_001, chunk.length);
            image.writeZeroes(300_000, 10_000, java.util.Set.of());
            java.util.Arrays.fill(data, 300_000, 310_000, (byte) 0);
            assertArrayEquals(data, readAll(image));
        }
        assertArrayEquals(data, qemuRaw(f));
        assertQemuCheckClean(f);
    }

    @Test
    void withoutTheSecretTheHeaderShowsAndNoData() throws IOException {
        Path f = dir.resolve("k.qcow2");
        qemuCreate(dir, f, "", "1M");
        try (Image image = Imago.opener().path(f).open()) {
            assertTrue(image.info().formatSpecific().containsKey("encrypt"));
            ImageException e = assertThrows(ImageException.class, () -> image.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("Parameter 'encrypt.key-secret' is required for cipher"),
                    e.getMessage());
        }
        ImageException e = assertThrows(ImageException.class, () -> Imago.opener().path(f).writable(true).open());
        assertTrue(e.getMessage().contains("encrypt.key-secret"), e.getMessage());
        ImageException wrong = assertThrows(ImageException.class, () -> Imago.opener().path(f)
                .secret("sec0", "nope".getBytes(StandardCharsets.UTF_8)).option("encrypt.key-secret", "sec0").open());
        assertTrue(wrong.getMessage().contains("Invalid password, cannot unlock any keyslot"), wrong.getMessage());
        try (Image image = open(f, true)) {
            UnsupportedFeatureException c = assertThrows(UnsupportedFeatureException.class,
                    () -> image.writeCompressed(ByteBuffer.allocate(65536), 0));
            assertTrue(c.getMessage().contains("Compression and encryption not supported at the same time"),
                    c.getMessage());
            assertFalse(image.mapping(0, 1).toString().isEmpty());
        }
    }

    @Test
    void amendAddsAndErasesKeySlotsAsQemuImg() throws IOException {
        Path f = dir.resolve("m.qcow2");
        qemuCreate(dir, f, "", "1M");
        try (Secrets s = Secrets.create()) {
            s.put("sec0", PASS.getBytes(StandardCharsets.UTF_8)).put("sec1", "def".getBytes(StandardCharsets.UTF_8));
            Imago.opener().path(f).secrets(s).option("encrypt.key-secret", "sec0").amend(Map.of("encrypt.state",
                    "active", "encrypt.new-secret", "sec1", "encrypt.keyslot", "3", "encrypt.iter-time", "10"), false,
                    p -> { });
            Imago.opener().path(f).secrets(s).option("encrypt.key-secret", "sec1").amend(Map.of("encrypt.state",
                    "inactive", "encrypt.old-secret", "sec0"), false, p -> { });
            IllegalArgumentException only = assertThrows(IllegalArgumentException.class, () -> Imago.opener().path(f)
                    .secrets(s).option("encrypt.key-secret", "sec1").amend(Map.of("encrypt.state", "inactive",
                            "encrypt.keyslot", "3"), false, p -> { }));
            assertTrue(only.getMessage().startsWith("Attempt to erase the only active keyslot 3"), only.getMessage());
        }
        Qemu.ok(dir, Qemu.io(), "--object", "secret,id=s1,data=def", "--image-opts",
                "driver=qcow2,encrypt.key-secret=s1,file.filename=" + f, "-c", "write -P 7 0 4k", "-c", "read -P 7 0 4k");
        Qemu.Output old = Qemu.run(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(f), "-c", "read 0 512");
        assertTrue((old.out() + old.err()).contains("Invalid password, cannot unlock any keyslot"),
                old.out() + old.err());
        String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", f);
        assertEquals(1, info.split("\"active\": true", -1).length - 1, info);
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", "secret,id=s1,data=def", "--image-opts",
                "driver=qcow2,encrypt.key-secret=s1,file.filename=" + f);
        assertEquals(0, check.status(), check.out() + check.err());
    }

    /**
     * Internal snapshots: a cluster shared with a snapshot is copied on write, decrypted from its old host offset and
     * encrypted for its new one; both the snapshot and the active image read as qemu-img reads them.
     */
    @Test
    void writesAfterASnapshotKeepTheSnapshotReadable() throws IOException {
        Path f = dir.resolve("s.qcow2");
        qemuCreate(dir, f, "", "1M");
        Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(f), "-c", "write -P 0x21 0 200k");
        Qemu.ok(dir, Qemu.img(), "snapshot", "--object", SECRET, "--image-opts", imageOpts(f), "-c", "s1");
        byte[] before = qemuRaw(f);
        byte[] after = before.clone();
        try (Image image = open(f, true)) {
            byte[] chunk = new byte[5000];
            new Random(3).nextBytes(chunk);
            image.write(ByteBuffer.wrap(chunk), 65_000);
            System.arraycopy(chunk, 0, after, 65_000, chunk.length);
            assertArrayEquals(after, readAll(image));
        }
        assertArrayEquals(after, qemuRaw(f));
        assertArrayEquals(before, Qemu.convertToRaw(dir, "--object", SECRET, "--image-opts", imageOpts(f), "-l", "s1"));
        try (Image image = Imago.opener().path(f).format("qcow2").secret("sec0", PASS.getBytes(StandardCharsets.UTF_8))
                .option("encrypt.key-secret", "sec0").option("snapshot", "s1").open()) {
            assertArrayEquals(before, readAll(image));
        }
        assertQemuCheckClean(f);
    }

    /** Growing an image whose last cluster holds data: the bytes past the old end read as zero, encrypted. */
    @Test
    void growingKeepsTheNewBytesZero() throws IOException {
        Path f = dir.resolve("r.qcow2");
        qemuCreate(dir, f, "", "1000K");
        Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(f), "-c", "write -P 0x44 990k 10k");
        byte[] expected = new byte[2 << 20];
        java.util.Arrays.fill(expected, 990 << 10, 1000 << 10, (byte) 0x44);
        try (Image image = open(f, true)) {
            image.resize(2 << 20, imago.api.Preallocation.OFF);
            assertArrayEquals(expected, readAll(image));
        }
        assertArrayEquals(expected, qemuRaw(f));
        assertQemuCheckClean(f);
    }

    /** {@code measure} counts the LUKS header's clusters, as qemu-img measure does. */
    @Test
    void measureCountsTheLuksHeader() throws IOException {
        for (String o : List.of("", ",encrypt.cipher-alg=aes-128,cluster_size=4096")) {
            CreateOptions.Builder b = CreateOptions.builder().size(1L << 30).option("encrypt.format", "luks")
                    .option("encrypt.key-secret", "sec0");
            for (String kv : o.split(",")) {
                if (!kv.isEmpty()) {
                    b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
                }
            }
            imago.api.Measurement m = Qcow2Measure.measure(b.build(), null);
            String q = Qemu.okDerivingKey(dir, Qemu.img(), "measure", "--output=json", "--object", SECRET, "-O",
                    "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0" + o, "--size", "1G");
            assertTrue(q.contains("\"required\": " + m.required() + ","), o + ": " + q + " vs " + m);
            assertTrue(q.contains("\"fully-allocated\": " + m.fullyAllocated()), o + ": " + q + " vs " + m);
        }
    }
}
