package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2LuksQemuTest.PASS;
import static imago.qcow2.internal.Qcow2LuksQemuTest.SECRET;
import static imago.qcow2.internal.Qcow2LuksQemuTest.imageOpts;
import static imago.qcow2.internal.Qcow2LuksQemuTest.open;
import static imago.qcow2.internal.Qcow2LuksQemuTest.qemuCreate;
import static imago.qcow2.internal.Qcow2LuksQemuTest.qemuRaw;
import static imago.qcow2.internal.Qcow2LuksQemuTest.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.Secrets;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Preallocated qcow2 images with {@code encrypt.format=luks}, imago's and qemu-img's side by side. What a preallocated
 * cluster the guest never wrote reads is no choice of imago's: qemu-img reads the file's zeroes decrypted, i.e. noise
 * (its map says {@code data}, not {@code zero}), for {@code metadata}, {@code falloc} and {@code full} alike (the
 * test samples them), and imago must read exactly what qemu-img reads. Both ways: imago reads qemu-img's images as {@code qemu-img convert}
 * does, qemu-img reads imago's as imago does and checks them clean, and the two creators' images map alike. Growing
 * with preallocation copies the old last cluster's head encrypted, as QEMU's copy-on-write does: it still reads zero.
 */
class Qcow2LuksPreallocationTest {
    private static final long SIZE = 1000 << 10;
    private static final long GROWN = 1100 << 10;

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    private String qemuMap(Path f) {
        return Qemu.ok(dir, Qemu.img(), "map", "--output=json", "--object", SECRET, "--image-opts", imageOpts(f));
    }

    private void assertQemuCheckClean(Path f, String what) {
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", SECRET, "--image-opts", imageOpts(f));
        assertEquals(0, check.status(), () -> what + ": " + check.out() + check.err());
    }

    /** imago and qemu-img read the image alike; returns what they read. */
    private byte[] assertReadAlike(Path f, String what) throws IOException {
        byte[] qemu = qemuRaw(dir, f);
        try (Image image = open(f, false)) {
            assertArrayEquals(qemu, readAll(image), what + ": imago reads what qemu-img reads");
        }
        return qemu;
    }

    private static boolean allZero(byte[] b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    @Test
    void preallocatedClustersReadAsQemuImgReadsThem() throws IOException {
        // a sample: falloc reads as full does (qemu-img create calibrates PBKDF2 for half a second whatever iter-time)
        for (Preallocation mode : List.of(Preallocation.METADATA, Preallocation.FULL)) {
            String name = mode.name().toLowerCase(Locale.ROOT);
            Path q = dir.resolve("q-" + name + ".qcow2");
            qemuCreate(dir, q, "preallocation=" + name, Long.toString(SIZE));
            Path i = dir.resolve("i-" + name + ".qcow2");
            Imago.create(i, "qcow2", CreateOptions.builder().size(SIZE).preallocation(mode)
                    .secrets(Secrets.create().put("sec0", PASS.toCharArray())).option("encrypt.format", "luks")
                    .option("encrypt.key-secret", "sec0").option("encrypt.iter-time", "10").build());
            assertQemuCheckClean(i, name + ", imago's image");
            assertEquals(qemuMap(q), qemuMap(i), name + ": qemu-img maps imago's image as its own");
            for (Path f : List.of(q, i)) {
                String what = name + ", " + f.getFileName();
                byte[] content = assertReadAlike(f, what);
                // unwritten preallocated clusters are the file's zeroes decrypted: noise, in qemu-img as in imago
                assertTrue(!allZero(content, 0, 64 << 10), what + ": a preallocated cluster reads zero");
            }
            // growing without preallocation: the rest of the old last cluster reads alike in both (noise, as in QEMU,
            // when it was preallocated), the new clusters zero
            Qemu.ok(dir, Qemu.img(), "resize", "--object", SECRET, "--image-opts", imageOpts(q), Long.toString(GROWN));
            try (Image image = open(i, true)) {
                image.resize(GROWN, Preallocation.OFF);
            }
            for (Path f : List.of(q, i)) {
                String what = name + ", " + f.getFileName() + " grown";
                byte[] content = assertReadAlike(f, what);
                assertTrue(allZero(content, 1024 << 10, content.length), what + ": the new clusters read zero");
                assertQemuCheckClean(f, what);
            }
        }
    }

    /**
     * Growing with preallocation an image whose last cluster is unallocated: the cluster gets a host cluster, and the
     * part of it below the old end, which read zero, is written encrypted zeroes (as QEMU copies it on allocation),
     * so that it still reads zero; the new bytes read as qemu-img reads them.
     */
    @Test
    void growingWithPreallocationKeepsTheOldLastClusterZero() throws IOException {
        Path made = dir.resolve("g.qcow2");
        qemuCreate(dir, made, "", Long.toString(SIZE));
        Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(made), "-c", "write -P 0x5a 0 64k");
        for (Preallocation mode : List.of(Preallocation.METADATA, Preallocation.FALLOC)) {
            String name = mode.name().toLowerCase(Locale.ROOT);
            Path f = Files.copy(made, dir.resolve("g-" + name + ".qcow2"));
            Path copy = Files.copy(made, dir.resolve("g-" + name + "-qemu.qcow2"));
            try (Image image = open(f, true)) {
                image.resize(GROWN, mode);
            }
            Qemu.ok(dir, Qemu.img(), "resize", "--preallocation=" + name, "--object", SECRET, "--image-opts",
                    imageOpts(copy), Long.toString(GROWN));
            for (Path p : List.of(f, copy)) {
                String what = name + ", " + p.getFileName();
                byte[] content = assertReadAlike(p, what);
                byte[] head = new byte[64 << 10];
                Arrays.fill(head, (byte) 0x5a);
                assertArrayEquals(head, Arrays.copyOf(content, head.length), what + ": the data written");
                assertTrue(allZero(content, 64 << 10, (int) SIZE), what + ": the old unwritten bytes read zero");
                assertTrue(!allZero(content, 1024 << 10, content.length), what + ": the new clusters are noise");
                assertQemuCheckClean(p, what);
            }
            assertEquals(qemuMap(copy), qemuMap(f), name + ": imago's growth maps as qemu-img's");
        }
    }
}
