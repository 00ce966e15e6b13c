package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Secrets;
import imago.luks.crypto.IvGenerator;
import imago.luks.crypto.SectorCipher;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LUKS2 both ways with cryptsetup (files, no device mapper): cryptsetup formats (PBKDF2, Argon2id and Argon2i
 * slots; 512- and 4096-byte sectors; XTS and CBC-ESSIV), imago unlocks with the passphrase and refuses another;
 * imago creates, and cryptsetup dumps the header and accepts the passphrase. Since cryptsetup cannot map the data
 * without device-mapper, the data path is checked against the volume key cryptsetup itself dumps
 * ({@code luksDump --dump-volume-key}): the bytes on disk must be the plaintext encrypted under that key with each
 * sector's number (in the segment's sector size) as the IV, whichever side wrote them.
 */
class Luks2CryptsetupTest {
    static final String PASS = "correct horse";

    @TempDir
    Path dir;

    private Path keyFile(String text) throws IOException {
        Path key = dir.resolve("key-" + text.hashCode());
        Files.writeString(key, text);
        return key;
    }

    private static Image open(Path file, boolean writable, String pass) throws IOException {
        return Imago.opener().path(file).format("luks").writable(writable)
                .secret("s", pass.getBytes(StandardCharsets.UTF_8)).option("key-secret", "s").open();
    }

    /** The volume key as cryptsetup dumps it. */
    private byte[] dumpedKey(Path f) throws IOException {
        String out = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", "--dump-volume-key", "--batch-mode",
                "--key-file", keyFile(PASS), f);
        String hex = out.substring(out.indexOf("MK dump:") + 8).replaceAll("\\s", "");
        return HexFormat.of().parseHex(hex);
    }

    /**
     * The plaintext of {@code length} bytes at guest {@code offset} (sector-aligned), decrypted from the file
     * independently of the open image: the segment's cipher under {@code key}, IVs counted in sectors.
     */
    private static byte[] decryptRaw(Path f, byte[] key, Map<String, Object> info, long offset, int length)
            throws IOException {
        int sector = ((Number) info.get("sector-size")).intValue();
        long payload = ((Number) info.get("payload-offset")).longValue();
        byte[] buf = new byte[length];
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "r")) {
            raf.seek(payload + offset);
            raf.readFully(buf);
        }
        LuksCipherSpec spec = LuksCipherSpec.fromOptions((String) info.get("cipher-alg"),
                (String) info.get("cipher-mode"), (String) info.get("ivgen-alg"), (String) info.get("ivgen-hash-alg"));
        SectorCipher.of(spec.algorithm(), spec.mode(), key,
                IvGenerator.of(spec.ivgen(), spec.algorithm(), spec.ivHash(), key), sector)
                .decrypt(buf, 0, length, offset / sector);
        return buf;
    }

    private Path cryptsetupFormat(String name, String... options) throws IOException {
        Path f = dir.resolve(name);
        byte[] filler = new byte[1 << 20];
        new Random(name.hashCode()).nextBytes(filler);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(18L << 20);
            raf.seek(16L << 20);
            raf.write(filler);
        }
        List<Object> cmd = new ArrayList<>(List.of(Qemu.tool("cryptsetup"), "luksFormat", "--type", "luks2",
                "--batch-mode", "--key-file", keyFile(PASS)));
        cmd.addAll(List.of(options));
        cmd.add(f);
        Qemu.ok(dir, cmd.toArray());
        return f;
    }

    @Test
    void imagoOpensWhatCryptsetupFormats() throws IOException {
        String[][] variants = {
            // RIPEMD-160 (on Bouncy Castle in imago) for the slot's PBKDF2, its anti-forensic hash and the digest
            {"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512", "--hash", "ripemd160"},
            {"--pbkdf", "argon2id", "--pbkdf-memory", "1024", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "2",
                "--sector-size", "4096"},
            {"--pbkdf", "argon2i", "--pbkdf-memory", "512", "--pbkdf-force-iterations", "4", "--cipher",
                "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1", "--sector-size", "4096"},
        };
        int n = 0;
        for (String[] variant : variants) {
            String what = String.join(" ", variant);
            Path f = cryptsetupFormat("cs" + n++ + ".luks", variant);
            byte[] key = dumpedKey(f);
            Map<String, Object> info;
            byte[] data = new byte[10_000];
            new Random(3).nextBytes(data);
            try (Image image = open(f, true, PASS)) {
                info = image.info().formatSpecific();
                assertEquals(2, info.get("luks-version"), what);
                assertEquals(2L << 20, image.size(), what);
                // the data cryptsetup left (random filler) decrypts as the dumped key decrypts it
                ByteBuffer first = ByteBuffer.allocate(64 * 1024);
                image.read(first, 0);
                assertArrayEquals(decryptRaw(f, key, info, 0, 64 * 1024), first.array(), what);
                image.write(ByteBuffer.wrap(data), 12_345);
            }
            try (Image image = open(f, false, PASS)) {
                ByteBuffer back = ByteBuffer.allocate(data.length);
                image.read(back, 12_345);
                assertArrayEquals(data, back.array(), what);
            }
            int sector = ((Number) info.get("sector-size")).intValue();
            long from = 12_345 / sector * sector;
            byte[] plain = decryptRaw(f, key, info, from, (int) ((12_345 + data.length - from + sector - 1) / sector
                    * sector));
            byte[] written = new byte[data.length];
            System.arraycopy(plain, (int) (12_345 - from), written, 0, data.length);
            assertArrayEquals(data, written, "imago's write is the plaintext under cryptsetup's key: " + what);
            ImageException wrong = assertThrows(ImageException.class, () -> open(f, false, "wrong horse"));
            assertTrue(wrong.getMessage().contains("Invalid password, cannot unlock any keyslot"), wrong.getMessage());
        }
    }

    @Test
    void cryptsetupUnlocksWhatImagoCreates() throws IOException {
        String[] variants = {
            "pbkdf=pbkdf2,sector-size=512,hash-alg=ripemd160",
            "pbkdf=argon2id,pbkdf-memory=1024,pbkdf-parallel=2,sector-size=4096",
            "pbkdf=argon2i,pbkdf-memory=256,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1",
        };
        Path wrong = keyFile("wrong horse");
        int n = 0;
        for (String options : variants) {
            Path f = dir.resolve("i" + n++ + ".luks");
            CreateOptions.Builder b = CreateOptions.builder().size(1 << 20)
                    .secrets(Secrets.create().put("s", PASS.getBytes(StandardCharsets.UTF_8)))
                    .option("key-secret", "s").option("iter-time", "10").option("luks-version", "2");
            for (String kv : options.split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "luks", b.build());
            String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
            assertTrue(dump.contains("Version:       \t2"), dump);
            String kdf = options.substring(6, options.indexOf(','));
            assertTrue(dump.contains("PBKDF:      " + kdf), dump);
            assertTrue(dump.contains(options.contains("cbc") ? "cipher: aes-cbc-essiv:sha256" : "cipher: aes-xts-plain64"),
                    dump);
            assertTrue(dump.contains("sector: " + (options.contains("4096") ? 4096 : 512) + " [bytes]"), dump);
            assertTrue(dump.contains("offset: 16777216 [bytes]"), dump);
            if (options.contains("ripemd160")) {
                assertTrue(dump.contains("AF hash:    ripemd160") && dump.contains("Hash:       ripemd160"), dump);
            }
            assertEquals(0, Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file",
                    keyFile(PASS), f).status(), options);
            assertNotEquals(0, Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file",
                    wrong, f).status(), options);

            byte[] data = new byte[1 << 20];
            new Random(5).nextBytes(data);
            Map<String, Object> info;
            try (Image image = open(f, true, PASS)) {
                assertEquals(1 << 20, image.size());
                image.write(ByteBuffer.wrap(data), 0);
                info = image.info().formatSpecific();
            }
            assertArrayEquals(data, decryptRaw(f, dumpedKey(f), info, 0, data.length),
                    "cryptsetup's volume key decrypts imago's data: " + options);
            try (Image image = open(f, false, PASS)) {
                assertArrayEquals(data, LuksQemuTest.readAll(image), options);
            }
        }
    }
}
