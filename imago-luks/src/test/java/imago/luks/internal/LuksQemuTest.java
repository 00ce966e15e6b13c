package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Secrets;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS containers both ways with qemu-img 7.2: what qemu-img creates and writes, imago reads byte for byte (against
 * {@code qemu-img convert -O raw}); what imago creates and writes, qemu-img reads ({@code qemu-img compare} against
 * the raw bytes), over every cipher mode, IV generator and hash qemu-img offers.
 */
class LuksQemuTest {
    static final String PASS = "abc";
    static final String SECRET = "secret,id=sec0,data=" + PASS;

    @TempDir
    Path dir;

    static String imageOpts(Path file) {
        return "driver=luks,key-secret=sec0,file.filename=" + file;
    }

    static Image open(Path file, boolean writable) throws IOException {
        return Imago.opener().path(file).format("luks").writable(writable)
                .secret("sec0", PASS.getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0").open();
    }

    static byte[] readAll(Image image) throws IOException {
        return QemuReads.readAll(image);
    }

    private static final String[][] VARIANTS = {
        {"cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256"},
        {"cipher-alg=aes-128,cipher-mode=xts,ivgen-alg=plain,hash-alg=sha512"},
        // not aes-192 in CBC: its 96000 bytes of key material are no whole number of sectors, and qemu-img 7.2 aborts
        {"cipher-alg=aes-192,cipher-mode=xts,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha256"},
        {"cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha1"},
        {"cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha256"},
    };

    /**
     * Two of the variants only: qemu-img create calibrates PBKDF2 for at least half a second of CPU whatever the
     * {@code iter-time}; cryptsetup's containers ({@link LuksCryptsetupTest}) cover more ciphers on the read side.
     */
    @Test
    void imagoReadsAndWritesWhatQemuImgCreates() throws IOException {
        for (String[] variant : new String[][] {VARIANTS[0], VARIANTS[3]}) {
            Path f = dir.resolve("q.luks");
            Files.deleteIfExists(f);
            qemuCreate(dir, f, variant[0], "1M");
            Qemu.ok(dir, Qemu.io(), "--object", SECRET, "--image-opts", imageOpts(f), "-c", "write -P 0x5a 1000 70000",
                    "-c", "write -P 0xa5 512 512", "-c", "write -P 0x11 1040000 8576");
            byte[] expected = qemuRaw(f);
            try (Image image = open(f, true)) {
                assertArrayEquals(expected, readAll(image), variant[0]);
                byte[] data = new byte[100_000];
                new Random(variant[0].hashCode()).nextBytes(data);
                image.write(ByteBuffer.wrap(data), 333);
                image.write(ByteBuffer.wrap(data, 0, 4096), 512 * 1000);
                image.flush();
                System.arraycopy(data, 0, expected, 333, data.length);
                System.arraycopy(data, 0, expected, 512 * 1000, 4096);
                assertArrayEquals(expected, readAll(image), variant[0] + " after writes");
            }
            assertArrayEquals(expected, qemuRaw(f), variant[0] + ": qemu-img reads imago's writes");
        }
    }

    @Test
    void qemuImgReadsWhatImagoCreates() throws IOException {
        for (String[] variant : VARIANTS) {
            Path f = dir.resolve("i.luks");
            Files.deleteIfExists(f);
            CreateOptions.Builder b = CreateOptions.builder().size(3 << 20)
                    .secrets(Secrets.create().put("sec0", PASS.toCharArray())).option("key-secret", "sec0")
                    .option("iter-time", "10");
            for (String kv : variant[0].split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "luks", b.build());
            byte[] data = new byte[3 << 20];
            new Random(1).nextBytes(data);
            try (Image image = open(f, true)) {
                assertEquals(3 << 20, image.size());
                image.write(ByteBuffer.wrap(data), 0);
            }
            Path raw = dir.resolve("expected.raw");
            Files.write(raw, data);
            Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", SECRET, "--image-opts", imageOpts(f),
                    "driver=raw,file.filename=" + raw);
            assertEquals(0, cmp.status(), variant[0] + ": " + cmp.out() + cmp.err());
            String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", f);
            assertTrue(info.contains("\"cipher-mode\": \"" + (variant[0].contains("xts") ? "xts" : "cbc") + "\""), info);
        }
    }

    /** {@code qemu-img create -f luks} with a short {@code iter-time}, retried as its PBKDF2 calibration needs. */
    static void qemuCreate(Path dir, Path f, String options, String size) {
        Qemu.okDerivingKey(dir, Qemu.img(), "create", "-f", "luks", "--object", SECRET, "-o",
                "key-secret=sec0,iter-time=10" + (options.isEmpty() ? "" : "," + options), f, size);
    }

    private byte[] qemuRaw(Path f) {
        return Qemu.convertToRaw(dir, "--object", SECRET, "--image-opts", imageOpts(f));
    }
}
