package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Secrets;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS1 and LUKS2 headers imago writes with Serpent, Twofish and CAST5, as cryptsetup 2.6 reads them
 * ({@code luksDump}: the cipher string, key size, version); imago reopens them with the passphrase and refuses
 * another. cryptsetup's {@code open --test-passphrase} decrypts key slots through the kernel's crypto API, whose
 * ciphers are whatever the kernel has loaded (on CI's VMs AES alone), so the key slots' contents are checked the
 * other way, against qemu-img ({@link LuksCipherQemuTest}), for LUKS1.
 */
class LuksCipherCryptsetupTest {
    @TempDir
    Path dir;

    @Test
    void cryptsetupDumpsWhatImagoCreates() throws IOException {
        String[][] variants = {
            {"1", "cipher-alg=serpent-256,cipher-mode=xts,ivgen-alg=plain64", "serpent-xts-plain64", "512"},
            {"1", "cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=md5", "cast5-cbc-essiv:md5",
                "128"},
            {"2", "cipher-alg=twofish-192,cipher-mode=xts,ivgen-alg=plain64,sector-size=4096", "twofish-xts-plain64",
                "384"},
            {"2", "cipher-alg=serpent-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                "serpent-cbc-essiv:sha256", "128"},
            {"2", "cipher-alg=cast5-128,cipher-mode=ctr,ivgen-alg=plain", "cast5-ctr-plain", "128"},
        };
        int n = 0;
        for (String[] v : variants) {
            String what = "LUKS" + v[0] + " " + v[1];
            Path f = dir.resolve("i" + n++ + ".luks");
            CreateOptions.Builder b = CreateOptions.builder().size(1 << 20)
                    .secrets(Secrets.create().put("s", LuksQemuTest.PASS.getBytes(StandardCharsets.UTF_8)))
                    .option("key-secret", "s").option("iter-time", "10");
            if (v[0].equals("2")) {
                b.option("luks-version", "2").option("pbkdf", "pbkdf2");
            }
            for (String kv : v[1].split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "luks", b.build());
            String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
            assertTrue(dump.contains("Version:       \t" + v[0]), what + ": " + dump);
            if (v[0].equals("1")) {
                String[] c = v[2].split("-", 2);
                assertTrue(dump.contains("Cipher name:   \t" + c[0]), what + ": " + dump);
                assertTrue(dump.contains("Cipher mode:   \t" + c[1]), what + ": " + dump);
                assertTrue(dump.contains("MK bits:       \t" + v[3]), what + ": " + dump);
            } else {
                assertTrue(dump.contains("cipher: " + v[2]), what + ": " + dump);
                assertTrue(dump.contains("Key:        " + v[3] + " bits"), what + ": " + dump);
            }

            byte[] data = new byte[100_000];
            new Random(n).nextBytes(data);
            try (Image image = LuksQemuTest.open(f, true)) {
                image.write(ByteBuffer.wrap(data), 4096);
            }
            byte[] file = Files.readAllBytes(f);
            assertEquals(-1, indexOf(file, data), what + ": the payload is encrypted");
            try (Image image = LuksQemuTest.open(f, false)) {
                ByteBuffer back = ByteBuffer.allocate(data.length);
                image.read(back, 4096);
                assertArrayEquals(data, back.array(), what);
                assertTrue(image.info().formatSpecific().toString().contains(v[1].substring(11, v[1].indexOf(','))),
                        what + ": " + image.info().formatSpecific());
            }
            ImageException wrong = assertThrows(ImageException.class, () -> Imago.opener().path(f).format("luks")
                    .secret("s", "abd".getBytes(StandardCharsets.UTF_8)).option("key-secret", "s").open());
            assertTrue(wrong.getMessage().contains("Invalid password"), wrong.getMessage());
        }
    }

    /** Where the first 64 bytes of {@code what} occur in {@code in}, or -1. */
    private static int indexOf(byte[] in, byte[] what) {
        outer:
        for (int i = 0; i + 64 <= in.length; i++) {
            for (int k = 0; k < 64; k++) {
                if (in[i + k] != what[k]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
