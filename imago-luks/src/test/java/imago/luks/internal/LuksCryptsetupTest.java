package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
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
 * LUKS1 containers both ways with cryptsetup (no device mapper: {@code luksFormat}, {@code luksDump} and
 * {@code open --test-passphrase} work on files): what cryptsetup formats, imago opens, reads as qemu-img does and
 * writes so that qemu-img reads it back; what imago creates, cryptsetup dumps and unlocks with the passphrase,
 * and refuses with another.
 */
class LuksCryptsetupTest {
    @TempDir
    Path dir;

    @Test
    void imagoOpensWhatCryptsetupFormats() throws IOException {
        Path key = dir.resolve("key");
        Files.writeString(key, LuksQemuTest.PASS);
        String[][] variants = {
            {},
            {"--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1"},
            {"--cipher", "aes-xts-plain", "--key-size", "256", "--hash", "sha512"},
            // RIPEMD-160, on Bouncy Castle in imago: PBKDF2 of the slot and the digest, and the anti-forensic merge
            {"--cipher", "aes-cbc-plain64", "--key-size", "128", "--hash", "ripemd160"},
        };
        for (String[] variant : variants) {
            Path f = dir.resolve("cs.luks");
            Files.deleteIfExists(f);
            byte[] filler = new byte[3 << 20];
            new Random(9).nextBytes(filler);
            Files.write(f, filler);
            Object[] cmd = new Object[9 + variant.length];
            Object[] head = {Qemu.tool("cryptsetup"), "luksFormat", "--type", "luks1", "--batch-mode",
                "--pbkdf-force-iterations", "1000", "--key-file", key};
            System.arraycopy(head, 0, cmd, 0, head.length);
            System.arraycopy(variant, 0, cmd, head.length, variant.length);
            Object[] all = java.util.Arrays.copyOf(cmd, cmd.length + 1);
            all[cmd.length] = f;
            Qemu.ok(dir, all);
            Path raw = dir.resolve("q.raw");
            Files.deleteIfExists(raw);
            Qemu.ok(dir, Qemu.img(), "convert", "--object", LuksQemuTest.SECRET, "--image-opts",
                    LuksQemuTest.imageOpts(f), "-O", "raw", raw);
            byte[] expected = Files.readAllBytes(raw);
            try (Image image = LuksQemuTest.open(f, true)) {
                assertArrayEquals(expected, LuksQemuTest.readAll(image), String.join(" ", variant));
                byte[] data = new byte[5000];
                new Random(2).nextBytes(data);
                image.write(ByteBuffer.wrap(data), 777);
                System.arraycopy(data, 0, expected, 777, data.length);
            }
            Files.delete(raw);
            Qemu.ok(dir, Qemu.img(), "convert", "--object", LuksQemuTest.SECRET, "--image-opts",
                    LuksQemuTest.imageOpts(f), "-O", "raw", raw);
            assertArrayEquals(expected, Files.readAllBytes(raw), "qemu-img reads imago's write");
        }
    }

    @Test
    void cryptsetupUnlocksWhatImagoCreates() throws IOException {
        Path key = dir.resolve("key");
        Files.writeString(key, LuksQemuTest.PASS);
        Path wrong = dir.resolve("wrong");
        Files.writeString(wrong, "abd");
        for (String options : new String[] {"", "cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1,cipher-alg=aes-128",
            "hash-alg=ripemd160"}) {
            Path f = dir.resolve("i.luks");
            Files.deleteIfExists(f);
            CreateOptions.Builder b = CreateOptions.builder().size(1 << 20)
                    .secrets(Secrets.create().put("sec0", LuksQemuTest.PASS.getBytes(StandardCharsets.UTF_8)))
                    .option("key-secret", "sec0").option("iter-time", "10");
            for (String kv : options.isEmpty() ? new String[0] : options.split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "luks", b.build());
            String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
            assertTrue(dump.contains("Version:       \t1"), dump);
            assertTrue(dump.contains(options.contains("cbc") ? "cbc-essiv:sha256" : "xts-plain64"), dump);
            assertTrue(dump.contains("Hash spec:     \t" + (options.contains("hash-alg=") ? options.replaceFirst(
                    ".*hash-alg=([a-z0-9]+).*", "$1") : "sha256")), dump);
            assertTrue(dump.contains("Key Slot 0: ENABLED") && dump.contains("Key Slot 1: DISABLED"), dump);
            assertEquals(0, Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file", key, f)
                    .status(), options);
            assertNotEquals(0, Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file",
                    wrong, f).status(), options);
        }
    }
}
