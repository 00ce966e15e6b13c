package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Secrets;
import imago.luks.crypto.CipherAlgorithm;
import imago.luks.crypto.LuksHash;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ciphers beyond AES (Serpent, Twofish, CAST5 on Bouncy Castle) and the modes beyond XTS and CBC (ECB, CTR) both
 * ways with qemu-img 7.2, sampled from every combination qemu-img accepts: a fixed few, plus one drawn at random each
 * run with a PBKDF2 hash drawn too (its seed in the messages). What qemu-img creates and qemu-io writes, imago reads
 * byte for byte and writes so that qemu-img reads it; what imago creates and writes, qemu-img reads
 * ({@code qemu-img compare}) and its {@code info} names the cipher and the hash. RIPEMD-160, the one hash on Bouncy
 * Castle, is in the fixed samples both ways.
 */
class LuksCipherQemuTest {
    @TempDir
    Path dir;

    /**
     * Every combination qemu-img 7.2 creates and reads back: each cipher and key size in each mode (CAST5 not in
     * XTS), each IV generator, ESSIV with the hash whose length is a key of the cipher (SHA-256, MD5 for CAST5). Not
     * 192-bit keys outside XTS: their key material is no whole number of sectors, and qemu-img 7.2 aborts on it.
     */
    static List<String> combinations() {
        List<String> all = new ArrayList<>();
        for (String alg : new String[] {"aes-128", "aes-192", "aes-256", "serpent-128", "serpent-192", "serpent-256",
            "twofish-128", "twofish-192", "twofish-256", "cast5-128"}) {
            for (String mode : new String[] {"xts", "cbc", "ecb", "ctr"}) {
                if (alg.startsWith("cast5") && mode.equals("xts") || alg.endsWith("192") && !mode.equals("xts")) {
                    continue;
                }
                for (String ivgen : new String[] {"plain", "plain64", "essiv"}) {
                    String hash = alg.startsWith("cast5") ? "md5" : "sha256";
                    all.add("cipher-alg=" + alg + ",cipher-mode=" + mode + ",ivgen-alg=" + ivgen
                            + (ivgen.equals("essiv") ? ",ivgen-hash-alg=" + hash : ""));
                }
            }
        }
        return all;
    }

    /**
     * The fixed sample (each a combination, perhaps with a {@code hash-alg}), then one combination drawn with
     * {@code seed}, with a {@code hash-alg} drawn among all qemu-img offers.
     */
    static List<String> sample(List<String> fixed, long seed) {
        List<String> all = combinations();
        for (String f : fixed) {
            assertTrue(all.contains(f.replaceFirst(",hash-alg=[a-z0-9]+$", "")), f);
        }
        List<String> sample = new ArrayList<>(fixed);
        Random random = new Random(seed);
        LuksHash[] hashes = LuksHash.values();
        sample.add(all.get(random.nextInt(all.size())) + ",hash-alg="
                + hashes[random.nextInt(hashes.length)].luksName());
        return sample;
    }

    /** The PBKDF2 hash a variant names (last, when it names one), qemu-img's default if none. */
    static String hashAlg(String variant) {
        int at = variant.indexOf(",hash-alg=");
        return at < 0 ? "sha256" : variant.substring(at + ",hash-alg=".length());
    }

    @Test
    void everyCipherIsAvailableHere() {
        for (CipherAlgorithm a : CipherAlgorithm.values()) {
            assertTrue(a.available(), a + ": Bouncy Castle should be in these tests' module graph");
        }
    }

    @Test
    void imagoReadsAndWritesWhatQemuImgCreates() throws IOException {
        long seed = new Random().nextLong();
        for (String variant : sample(List.of(
                "cipher-alg=serpent-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=ripemd160",
                "cipher-alg=cast5-128,cipher-mode=ctr,ivgen-alg=essiv,ivgen-hash-alg=md5"), seed)) {
            String what = variant + " (seed " + seed + ")";
            Path f = dir.resolve("q.luks");
            Files.deleteIfExists(f);
            LuksQemuTest.qemuCreate(dir, f, variant, "1M");
            Qemu.ok(dir, Qemu.io(), "--object", LuksQemuTest.SECRET, "--image-opts", LuksQemuTest.imageOpts(f),
                    "-c", "write -P 0x5a 1000 70000", "-c", "write -P 0x11 1040000 8576");
            byte[] expected = qemuRaw(f);
            try (Image image = LuksQemuTest.open(f, true)) {
                assertEquals(hashAlg(variant), image.info().formatSpecific().get("hash-alg"), what);
                assertArrayEquals(expected, LuksQemuTest.readAll(image), what);
                byte[] data = new byte[20_000];
                new Random(seed).nextBytes(data);
                image.write(ByteBuffer.wrap(data), 333);
                System.arraycopy(data, 0, expected, 333, data.length);
            }
            assertArrayEquals(expected, qemuRaw(f), what + ": qemu-img reads imago's writes");
        }
    }

    @Test
    void qemuImgReadsWhatImagoCreates() throws IOException {
        long seed = new Random().nextLong();
        for (String variant : sample(List.of(
                "cipher-alg=serpent-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                "cipher-alg=twofish-256,cipher-mode=xts,ivgen-alg=plain",
                "cipher-alg=twofish-192,cipher-mode=xts,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                "cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=plain64,hash-alg=ripemd160",
                "cipher-alg=serpent-256,cipher-mode=ecb,ivgen-alg=plain64",
                "cipher-alg=aes-128,cipher-mode=ctr,ivgen-alg=plain64"), seed)) {
            String what = variant + " (seed " + seed + ")";
            Path f = dir.resolve("i.luks");
            Files.deleteIfExists(f);
            CreateOptions.Builder b = CreateOptions.builder().size(1 << 20)
                    .secrets(Secrets.create().put("sec0", LuksQemuTest.PASS.toCharArray()))
                    .option("key-secret", "sec0").option("iter-time", "10");
            for (String kv : variant.split(",")) {
                b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            Imago.create(f, "luks", b.build());
            byte[] data = new byte[1 << 20];
            new Random(seed).nextBytes(data);
            try (Image image = LuksQemuTest.open(f, true)) {
                image.write(ByteBuffer.wrap(data), 0);
            }
            Path raw = dir.resolve("expected.raw");
            Files.write(raw, data);
            Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "--object", LuksQemuTest.SECRET, "--image-opts",
                    LuksQemuTest.imageOpts(f), "driver=raw,file.filename=" + raw);
            assertEquals(0, cmp.status(), what + ": " + cmp.out() + cmp.err());
            String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", f);
            String alg = variant.substring("cipher-alg=".length(), variant.indexOf(','));
            assertTrue(info.contains("\"cipher-alg\": \"" + alg + "\""), what + ": " + info);
            assertTrue(info.contains("\"hash-alg\": \"" + hashAlg(variant) + "\""), what + ": " + info);
        }
    }

    /**
     * What qemu-img 7.2 refuses, imago refuses in the same words: names it does not know, ESSIV hashes that give no
     * key of the cipher's family (RIPEMD-160's 160 bits are a key of none), CAST5 in XTS (qemu-img fails these before
     * it calibrates PBKDF2, so each is quick).
     */
    @Test
    void refusesWhatQemuImgRefusesInItsWords() {
        for (String variant : List.of("cipher-alg=cast5-128,cipher-mode=xts",
                "cipher-alg=serpent-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha1",
                "cipher-alg=twofish-256,ivgen-alg=essiv,ivgen-hash-alg=sha512",
                "cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha224",
                "cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                "cipher-alg=cast5-128,cipher-mode=xts,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                "cipher-alg=sm4", "cipher-alg=serpent-512", "cipher-alg=cast5-256", "cipher-mode=ofb",
                "ivgen-alg=benbi", "ivgen-alg=plain,ivgen-hash-alg=whirlpool",
                "cipher-alg=aes-256,ivgen-alg=essiv,ivgen-hash-alg=ripemd160",
                "cipher-alg=twofish-192,cipher-mode=xts,ivgen-alg=essiv,ivgen-hash-alg=ripemd160",
                "cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=ripemd160",
                "hash-alg=whirlpool", "hash-alg=RIPEMD160", "ivgen-hash-alg=SHA256")) {
            Path f = dir.resolve("r.luks");
            Qemu.Output q = Qemu.run(dir, Qemu.img(), "create", "-f", "luks", "--object", LuksQemuTest.SECRET, "-o",
                    "key-secret=sec0,iter-time=10," + variant, f, "1M");
            assertEquals(1, q.status(), variant + ": " + q.out() + q.err());
            String prefix = "qemu-img: " + f + ": ";
            assertTrue(q.err().startsWith(prefix), q.err());
            String words = q.err().substring(prefix.length()).strip();
            Map<String, String> o = new HashMap<>();
            for (String kv : variant.split(",")) {
                o.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"), o.get("ivgen-alg"),
                        o.get("ivgen-hash-alg"));
                LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
            }, variant);
            assertEquals(words, e.getMessage(), variant);
        }
    }

    /**
     * {@code measure -O luks} takes ripemd160 (its answer does not depend on the hash) and refuses a hash qemu-img
     * does not know in its words (qemu-img fails that before it calibrates PBKDF2, so it is quick).
     */
    @Test
    void measureTakesTheHashesQemuImgTakes() throws IOException {
        CreateOptions.Builder b = CreateOptions.builder().size(1 << 20).option("key-secret", "sec0");
        assertEquals(Imago.measure("luks", b.build(), null), Imago.measure("luks",
                b.option("hash-alg", "ripemd160").build(), null));
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "measure", "--object", LuksQemuTest.SECRET, "-O", "luks", "-o",
                "key-secret=sec0,iter-time=10,hash-alg=whirlpool", "--size", "1M");
        assertEquals(1, q.status(), q.out() + q.err());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Imago.measure("luks",
                b.option("hash-alg", "whirlpool").build(), null));
        assertEquals(q.err().strip(), "qemu-img: " + e.getMessage());
    }

    private byte[] qemuRaw(Path f) throws IOException {
        Path out = dir.resolve("out.raw");
        Files.deleteIfExists(out);
        Qemu.ok(dir, Qemu.img(), "convert", "--object", LuksQemuTest.SECRET, "--image-opts",
                LuksQemuTest.imageOpts(f), "-O", "raw", out);
        return Files.readAllBytes(out);
    }
}
