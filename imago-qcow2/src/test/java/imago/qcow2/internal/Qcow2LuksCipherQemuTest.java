package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * qcow2 {@code encrypt.format=luks} with the ciphers beyond AES (Serpent, Twofish, CAST5 through imago-luks and
 * Bouncy Castle) and the modes beyond XTS and CBC, and the PBKDF2 hash on Bouncy Castle (RIPEMD-160), both ways
 * with qemu-img 7.2, sampled: what qemu-img creates and qemu-io writes, imago reads byte for byte and writes so that
 * qemu-img reads it and checks it clean; what imago creates and writes, qemu-img reads ({@code qemu-img compare})
 * and checks clean.
 */
class Qcow2LuksCipherQemuTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    @Test
    void imagoReadsAndWritesWhatQemuImgCreates() throws IOException {
        String variant = "encrypt.cipher-alg=twofish-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,"
                + "encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=ripemd160,cluster_size=4096";
        Path f = dir.resolve("q.qcow2");
        Qcow2LuksQemuTest.qemuCreate(dir, f, variant, "2M");
        Qemu.ok(dir, Qemu.io(), "--object", Qcow2LuksQemuTest.SECRET, "--image-opts",
                Qcow2LuksQemuTest.imageOpts(f), "-c", "write -P 0x5a 1000 70000", "-c", "write -P 0x11 1040000 8576");
        byte[] expected = qemuRaw(f);
        try (Image image = Qcow2LuksQemuTest.open(f, true)) {
            assertEquals("ripemd160", ((java.util.Map<?, ?>) image.info().formatSpecific().get("encrypt"))
                    .get("hash-alg"), variant);
            assertArrayEquals(expected, Qcow2LuksQemuTest.readAll(image), variant);
            assertDirectReads(image, expected);
            byte[] data = new byte[50_000];
            new Random(3).nextBytes(data);
            image.write(ByteBuffer.wrap(data), 333);
            image.write(ByteBuffer.wrap(data, 5, 7), 1_500_001);
            System.arraycopy(data, 0, expected, 333, data.length);
            System.arraycopy(data, 5, expected, 1_500_001, 7);
        }
        assertArrayEquals(expected, qemuRaw(f), variant + ": qemu-img reads imago's writes");
        assertQemuCheckClean(f);
    }

    @Test
    void qemuImgReadsWhatImagoCreates() throws IOException {
        for (String variant : List.of("encrypt.cipher-alg=serpent-192,encrypt.cipher-mode=xts,encrypt.ivgen-alg=plain",
                "encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=ecb,encrypt.ivgen-alg=plain64,"
                        + "encrypt.hash-alg=ripemd160",
                "encrypt.cipher-alg=twofish-256,encrypt.cipher-mode=ctr,encrypt.ivgen-alg=essiv,"
                        + "encrypt.ivgen-hash-alg=sha256")) {
            Path f = dir.resolve("i.qcow2");
            Files.deleteIfExists(f);
            Qcow2LuksQemuTest.imagoCreate(f, variant, 2 << 20);
            byte[] data = new byte[2 << 20];
            try (Image image = Qcow2LuksQemuTest.open(f, true)) {
                Qcow2LuksQemuTest.writeRandomRuns(image, data, new Random(variant.hashCode()), 10);
            }
            Qcow2LuksQemuTest.assertQemuReads(dir, f, data, variant + ": ");
            assertQemuCheckClean(f);
            String info = Qemu.ok(dir, Qemu.img(), "info", f);
            String alg = variant.substring("encrypt.cipher-alg=".length(), variant.indexOf(','));
            assertTrue(info.contains("cipher alg: " + alg), variant + ": " + info);
            assertTrue(info.contains("hash alg: " + (variant.contains(",encrypt.hash-alg=ripemd160") ? "ripemd160"
                    : "sha256")), variant + ": " + info);
        }
    }

    /**
     * Reads into direct buffers (as convert reads), from a position past the buffer's start: whole sectors, which
     * are decrypted in the buffer itself, and reads that start or end inside a sector, across clusters.
     */
    private static void assertDirectReads(Image image, byte[] expected) throws IOException {
        long[][] reads = {{0, 1 << 20}, {4096, 8192}, {512, 70_144}, {333, 70_000}, {1_040_000, 8576}, {1023, 1}};
        for (long[] r : reads) {
            int n = (int) r[1];
            ByteBuffer dst = ByteBuffer.allocateDirect(n + 100).position(100).limit(100 + n);
            image.read(dst, r[0]);
            assertEquals(100 + n, dst.position(), "read " + n + " at " + r[0]);
            byte[] got = new byte[n];
            dst.get(100, got);
            assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) r[0], (int) r[0] + n), got,
                    "read " + n + " at " + r[0]);
        }
    }

    private byte[] qemuRaw(Path f) {
        return Qcow2LuksQemuTest.qemuRaw(dir, f);
    }

    private void assertQemuCheckClean(Path f) {
        Qcow2LuksQemuTest.assertQemuCheckClean(dir, f);
    }
}
