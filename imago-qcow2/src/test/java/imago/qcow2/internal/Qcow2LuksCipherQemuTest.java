package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Secrets;
import imago.probe.Imago;
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
 * Bouncy Castle) and the modes beyond XTS and CBC, both ways with qemu-img 7.2, sampled: what qemu-img creates and
 * qemu-io writes, imago reads byte for byte and writes so that qemu-img reads it and checks it clean; what imago
 * creates and writes, qemu-img reads ({@code qemu-img compare}) and checks clean.
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
                + "encrypt.ivgen-hash-alg=sha256,cluster_size=4096";
        Path f = dir.resolve("q.qcow2");
        Qcow2LuksQemuTest.qemuCreate(dir, f, variant, "2M");
        Qemu.ok(dir, Qemu.io(), "--object", Qcow2LuksQemuTest.SECRET, "--image-opts",
                Qcow2LuksQemuTest.imageOpts(f), "-c", "write -P 0x5a 1000 70000", "-c", "write -P 0x11 1040000 8576");
        byte[] expected = qemuRaw(f);
        try (Image image = Qcow2LuksQemuTest.open(f, true)) {
            assertArrayEquals(expected, Qcow2LuksQemuTest.readAll(image), variant);
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
        for (String variant : List.of("cipher-alg=serpent-192,cipher-mode=xts,ivgen-alg=plain",
                "cipher-alg=cast5-128,cipher-mode=ecb,ivgen-alg=plain64",
                "cipher-alg=twofish-256,cipher-mode=ctr,ivgen-alg=essiv,ivgen-hash-alg=sha256")) {
            Path f = dir.resolve("i.qcow2");
            Files.deleteIfExists(f);
            CreateOptions.Builder b = CreateOptions.builder().size(2 << 20)
                    .secrets(Secrets.create().put("sec0", Qcow2LuksQemuTest.PASS.toCharArray()))
                    .option("encrypt.format", "luks").option("encrypt.key-secret", "sec0")
                    .option("encrypt.iter-time", "10");
            for (String kv : variant.split(",")) {
                b.option("encrypt." + kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "qcow2", b.build());
            byte[] data = new byte[2 << 20];
            Random random = new Random(variant.hashCode());
            try (Image image = Qcow2LuksQemuTest.open(f, true)) {
                for (int i = 0; i < 10; i++) {
                    int at = random.nextInt(data.length - 1);
                    int n = 1 + random.nextInt(Math.min(data.length - at, 200_000));
                    byte[] chunk = new byte[n];
                    random.nextBytes(chunk);
                    image.write(ByteBuffer.wrap(chunk), at);
                    System.arraycopy(chunk, 0, data, at, n);
                }
            }
            Path raw = dir.resolve("expected.raw");
            Files.write(raw, data);
            Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", Qcow2LuksQemuTest.SECRET,
                    "--image-opts", Qcow2LuksQemuTest.imageOpts(f), "driver=raw,file.filename=" + raw);
            assertEquals(0, cmp.status(), variant + ": " + cmp.out() + cmp.err());
            assertQemuCheckClean(f);
            String info = Qemu.ok(dir, Qemu.img(), "info", f);
            String alg = variant.substring("cipher-alg=".length(), variant.indexOf(','));
            assertTrue(info.contains("cipher alg: " + alg), variant + ": " + info);
        }
    }

    private byte[] qemuRaw(Path f) throws IOException {
        Path out = dir.resolve("out.raw");
        Files.deleteIfExists(out);
        Qemu.ok(dir, Qemu.img(), "convert", "--object", Qcow2LuksQemuTest.SECRET, "--image-opts",
                Qcow2LuksQemuTest.imageOpts(f), "-O", "raw", out);
        return Files.readAllBytes(out);
    }

    private void assertQemuCheckClean(Path f) {
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", Qcow2LuksQemuTest.SECRET,
                "--image-opts", Qcow2LuksQemuTest.imageOpts(f));
        assertEquals(0, check.status(), check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
    }
}
