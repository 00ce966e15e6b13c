package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.Secrets;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile and damaged LUKS2 headers: each gets one specific exception (corrupt, limit or unsupported, naming the
 * field) in bounded time, and a damaged copy is survived when the other is good. The images are imago's own
 * (PBKDF2 slots, so that the tests are fast), edited and resealed with fresh checksums where the point is the
 * metadata rather than the checksum.
 */
class Luks2HostileTest {
    private static final int HDR = 16384;

    @TempDir
    Path dir;
    private Path image;
    private byte[] original;

    @BeforeEach
    void create() throws IOException {
        image = dir.resolve("h.luks");
        Imago.create(image, "luks", CreateOptions.builder().size(1 << 16)
                .secrets(Secrets.create().put("s", "pass".getBytes(StandardCharsets.UTF_8)))
                .option("key-secret", "s").option("iter-time", "1").option("luks-version", "2")
                .option("pbkdf", "pbkdf2").build());
        original = Files.readAllBytes(image);
    }

    private static Image open(Path file, String pass, Map<String, String> options) throws IOException {
        var opener = Imago.opener().path(file).format("luks").secret("s", pass.getBytes(StandardCharsets.UTF_8))
                .option("key-secret", "s");
        for (Map.Entry<String, String> e : options.entrySet()) {
            opener = opener.option(e.getKey(), e.getValue());
        }
        return opener.open();
    }

    private <T extends Exception> T refused(Class<T> type, String text) {
        return refused(type, text, Map.of());
    }

    private <T extends Exception> T refused(Class<T> type, String text, Map<String, String> options) {
        T e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(type, () -> {
            try (Image i = open(image, "pass", options)) {
                LuksQemuTest.readAll(i);
            }
        }));
        assertTrue(e.getMessage().contains(text), e.getMessage());
        return e;
    }

    static String json(byte[] file, int at) {
        int end = at + 4096;
        while (file[end] != 0) {
            end++;
        }
        return new String(file, at + 4096, end - at - 4096, StandardCharsets.UTF_8);
    }

    /** Replaces the JSON of the copy at {@code at} and recomputes its checksum. */
    static void setJson(byte[] file, int at, String json) {
        Arrays.fill(file, at + 4096, at + HDR, (byte) 0);
        byte[] text = json.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(text, 0, file, at + 4096, Math.min(text.length, HDR - 4096));
        reseal(file, at);
    }

    static void reseal(byte[] file, int at) {
        Arrays.fill(file, at + Luks2Header.CSUM_OFFSET, at + Luks2Header.CSUM_OFFSET + 64, (byte) 0);
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(file, at, HDR);
            System.arraycopy(md.digest(), 0, file, at + Luks2Header.CSUM_OFFSET, 32);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Edits both copies' JSON alike. */
    private void editJson(UnaryOperator<String> edit) throws IOException {
        byte[] b = original.clone();
        String j = edit.apply(json(b, 0));
        assertTrue(!j.equals(json(b, 0)), "the edit must change something");
        setJson(b, 0, j);
        setJson(b, HDR, j);
        Files.write(image, b);
    }

    @Test
    void theUneditedImageOpensAndTheResealHelperIsFaithful() throws IOException {
        byte[] b = original.clone();
        setJson(b, 0, json(b, 0));
        setJson(b, HDR, json(b, HDR));
        assertArrayEquals(original, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertEquals(1 << 16, i.size());
        }
    }

    @Test
    void truncatedHeadersAndAreasPastTheEnd() throws IOException {
        Files.write(image, Arrays.copyOf(original, 3000));
        refused(CorruptImageException.class, "truncated LUKS2 header");
        Files.write(image, Arrays.copyOf(original, 10_000));
        refused(CorruptImageException.class, "truncated LUKS2 header");
        // both copies whole, the key slot's area cut off
        Files.write(image, Arrays.copyOf(original, 40_000));
        refused(CorruptImageException.class, "key slot 0 area at 32768 ends past the end of the file");
    }

    @Test
    void aDamagedCopyIsSurvivedTwoAreNot() throws IOException {
        byte[] b = original.clone();
        b[4096 + 20] ^= 1;
        Files.write(image, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertEquals(1 << 16, i.size());
            assertTrue(String.valueOf(i.info().formatSpecific().get("damaged-header-copy"))
                    .contains("primary: LUKS2 primary header checksum mismatch"), i.info().formatSpecific()::toString);
        }
        b[HDR + 4096 + 20] ^= 1;
        Files.write(image, b);
        refused(CorruptImageException.class, "LUKS2 primary header checksum mismatch (and the secondary copy: LUKS2 "
                + "secondary header checksum mismatch)");
        // the secondary found by its magic when the primary's size field is garbage
        b = original.clone();
        ByteBuffer.wrap(b).putLong(Luks2Header.HDR_SIZE_OFFSET, 12345);
        Files.write(image, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertTrue(String.valueOf(i.info().formatSpecific().get("damaged-header-copy")).contains(
                    "header size 12345"));
        }
    }

    @Test
    void copiesThatDisagree() throws IOException {
        byte[] b = original.clone();
        setJson(b, 0, json(b, 0).replace("\"iv_tweak\":\"0\"", "\"iv_tweak\":\"7\""));
        Files.write(image, b);
        refused(CorruptImageException.class, "the two LUKS2 header copies have the same seqid 1 but different "
                + "metadata");
        // a higher seqid wins, as cryptsetup has it
        ByteBuffer.wrap(b).putLong(Luks2Header.SEQID_OFFSET, 2);
        reseal(b, 0);
        Files.write(image, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertEquals(2L, i.info().formatSpecific().get("seqid"));
            assertEquals(7L, i.info().formatSpecific().get("iv-tweak"));
        }
        b = original.clone();
        ByteBuffer.wrap(b).putLong(HDR + Luks2Header.HDR_OFFSET_OFFSET, 0);
        reseal(b, HDR);
        Files.write(image, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertTrue(String.valueOf(i.info().formatSpecific().get("damaged-header-copy")).contains(
                    "says it is at 0"));
        }
    }

    @Test
    void jsonBombsFailFast() throws IOException {
        editJson(j -> "{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}");
        refused(CorruptImageException.class, "nested deeper than 16 levels");
        editJson(j -> j.replace("\"iterations\":1000", "\"iterations\":1" + "0".repeat(400)));
        refused(CorruptImageException.class, "number too large");
        editJson(j -> j.replace("\"iterations\":1000", "\"iterations\":1000.5"));
        refused(CorruptImageException.class, "not an integer");
        editJson(j -> j.replace("{\"keyslots\":", "{\"keyslots\":{},\"keyslots\":"));
        refused(CorruptImageException.class, "duplicate key \"keyslots\"");
        editJson(j -> j.replace("\"json_size\":\"12288\"", "\"json_size\":\"4190208\""));
        refused(CorruptImageException.class, "json_size 4190208 does not match");
        editJson(j -> j.substring(0, j.length() - 1));
        refused(CorruptImageException.class, "JSON ends too early");
        editJson(j -> j.replace("\"offset\":\"16777216\"", "\"offset\":\"99999999999999999999\""));
        refused(CorruptImageException.class, "segments.0.offset: '99999999999999999999' is not a decimal number");
    }

    @Test
    void areasOutsideTheirPlace() throws IOException {
        editJson(j -> j.replace("\"offset\":\"32768\"", "\"offset\":\"16760000\""));
        refused(CorruptImageException.class, "key slot 0 area [16760000, +258048) lies outside the key-slot area");
        editJson(j -> j.replace("\"offset\":\"16777216\"", "\"offset\":\"4096\""));
        refused(CorruptImageException.class, "overlaps the header and key-slot areas");
        editJson(j -> j.replace("\"offset\":\"16777216\"", "\"offset\":\"1677721600\""));
        refused(CorruptImageException.class, "starts past the end of the file");
        editJson(j -> j.replace("\"size\":\"dynamic\"", "\"size\":\"1048576\""));
        refused(CorruptImageException.class, "ends past the end of the file");
        editJson(j -> j.replace("\"stripes\":4000", "\"stripes\":40000"));
        refused(CorruptImageException.class, "cannot hold 40000 stripes");
    }

    /** Areas one erase would wipe for another, tokens of the wrong shape, ids with two spellings. */
    @Test
    void overlappingAreasMalformedTokensAndAmbiguousIds() throws IOException {
        editJson(j -> {
            try {
                @SuppressWarnings("unchecked")
                Map<String, Object> root = (Map<String, Object>) Luks2Json.mutableCopy(Luks2Json.parse(j));
                @SuppressWarnings("unchecked")
                Map<String, Object> keyslots = (Map<String, Object>) root.get("keyslots");
                keyslots.put("1", Luks2Json.mutableCopy(keyslots.get("0")));
                return Luks2Json.write(root);
            } catch (Luks2Json.JsonException e) {
                throw new AssertionError(e);
            }
        });
        refused(CorruptImageException.class, "key slot 1 area [32768, +258048) overlaps key slot 0's [32768, "
                + "+258048)");
        editJson(j -> j.replace("\"tokens\":{}", "\"tokens\":{\"0\":[]}"));
        refused(CorruptImageException.class, "tokens.0: not an object");
        editJson(j -> j.replace("\"tokens\":{}", "\"tokens\":{\"0\":{\"type\":\"x\"}}"));
        refused(CorruptImageException.class, "tokens.0.keyslots: missing");
        editJson(j -> j.replace("\"tokens\":{}", "\"tokens\":{\"0\":{\"type\":\"x\",\"keyslots\":[0]}}"));
        refused(CorruptImageException.class, "tokens.0.keyslots: not a string");
        editJson(j -> j.replace("\"tokens\":{}", "\"tokens\":{\"40\":{\"type\":\"x\",\"keyslots\":[]}}"));
        refused(CorruptImageException.class, "tokens: id '40' is not a number below 32");
        editJson(j -> j.replace("\"keyslots\":{\"0\"", "\"keyslots\":{\"00\""));
        refused(CorruptImageException.class, "keyslots: id '00' is not a number below 32");
        // a token of any type, with the slots it names, is kept and does not stop a passphrase
        editJson(j -> j.replace("\"tokens\":{}", "\"tokens\":{\"3\":{\"type\":\"x\",\"keyslots\":[\"0\"],\"y\":"
                + "{\"z\":null}}}"));
        try (Image i = open(image, "pass", Map.of())) {
            assertEquals(1 << 16, i.size());
        }
    }

    /** A secondary copy whose size is not its offset is damaged: a rewrite would put it elsewhere. */
    @Test
    void aSecondaryCopyOfAnotherSizeIsDamaged() throws IOException {
        byte[] b = original.clone();
        ByteBuffer.wrap(b).putLong(HDR + Luks2Header.HDR_SIZE_OFFSET, 2 * HDR);
        Files.write(image, b);
        try (Image i = open(image, "pass", Map.of())) {
            assertTrue(String.valueOf(i.info().formatSpecific().get("damaged-header-copy")).contains(
                    "LUKS2 secondary header at 16384 says the header size is 32768"), i.info()::toString);
        }
        b[4096 + 20] ^= 1;
        Files.write(image, b);
        refused(CorruptImageException.class, "(and the secondary copy: LUKS2 secondary header at 16384 says the "
                + "header size is 32768)");
    }

    @Test
    void kdfCostsAreCappedAndTheCapsOverridable() throws IOException {
        String pbkdf2 = "\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":";
        String kdf = json(original, 0).substring(json(original, 0).indexOf(pbkdf2));
        String iterations = kdf.substring(pbkdf2.length(), kdf.indexOf(',', pbkdf2.length()));
        editJson(j -> j.replace(pbkdf2 + iterations, pbkdf2 + 4294967295L));
        ImageLimitException e = refused(ImageLimitException.class, "key slot 0 asks for 4294967295 PBKDF2 "
                + "iterations");
        assertTrue(e.getMessage().contains("pbkdf-max-iterations"), e.getMessage());
        String argon = "\"type\":\"argon2id\",\"time\":4,\"memory\":2147483647,\"cpus\":4";
        editJson(j -> j.replace(pbkdf2 + iterations, argon));
        refused(ImageLimitException.class, "asks for 2147483647 KiB of Argon2 memory, more than the limit of 4194304 "
                + "KiB (raise it with the open option argon2-max-memory=KiB");
        editJson(j -> j.replace(pbkdf2 + iterations, argon.replace("2147483647", "4294967295")));
        refused(CorruptImageException.class, "keyslots.0.kdf.memory: 4294967295 is outside 8..2147483647");
        editJson(j -> j.replace(pbkdf2 + iterations, argon.replace("2147483647", "65536").replace("\"time\":4",
                "\"time\":1000000")));
        refused(ImageLimitException.class, "asks for 1000000 Argon2 passes over 65536 KiB, more work than the limit");
        editJson(j -> j.replace(pbkdf2 + iterations, argon.replace("2147483647", "1024")));
        refused(ImageLimitException.class, "limit of 512 KiB", Map.of("argon2-max-memory", "512"));
        refused(ImageLimitException.class, "more work than the limit of 2048 KiB", Map.of("argon2-max-work", "2048"));
        // within the limits the slot is tried: the key it derives is not the volume key's
        refused(ImageException.class, "Invalid password, cannot unlock any keyslot");
        editJson(j -> j.replace(pbkdf2 + iterations, argon.replace("2147483647", "16").replace("\"cpus\":4",
                "\"cpus\":64")));
        refused(ImageLimitException.class, "64 lanes for 16 KiB");
    }

    @Test
    void unsupportedFeaturesAreNamed() throws IOException {
        editJson(j -> j.replace("\"encryption\":\"aes-xts-plain64\",\"sector_size\"",
                "\"encryption\":\"blowfish-xts-plain64\",\"sector_size\""));
        refused(UnsupportedFeatureException.class, "cipher 'blowfish'");
        editJson(j -> j.replace("\"type\":\"pbkdf2\",\"hash\"", "\"type\":\"scrypt\",\"hash\""));
        refused(UnsupportedFeatureException.class, "KDF 'scrypt'");
        editJson(j -> j.replace("\"keyslots_size\"", "\"requirements\":{\"mandatory\":[\"online-reencrypt-v2\"]},"
                + "\"keyslots_size\""));
        refused(UnsupportedFeatureException.class, "online-reencrypt-v2");
        editJson(j -> j.replace("\"sector_size\":512", "\"sector_size\":512,\"integrity\":{\"type\":\"hmac\"}"));
        refused(UnsupportedFeatureException.class, "integrity");
        editJson(j -> j.replace("\"type\":\"luks2\",\"key_size\"", "\"type\":\"luks2\",\"priority\":0,\"key_size\""));
        refused(ImageException.class, "no usable key slot");
    }

    @Test
    void aWrongPassphraseChangesNothing() throws IOException {
        ImageException e = assertThrows(ImageException.class, () -> Imago.opener().path(image).format("luks")
                .writable(true).secret("s", "past".getBytes(StandardCharsets.UTF_8)).option("key-secret", "s")
                .open());
        assertEquals("Invalid password, cannot unlock any keyslot", e.detail());
        assertArrayEquals(original, Files.readAllBytes(image));
        assertTrue(!e.getMessage().contains("past") && !e.getMessage().contains("pass,"), e.getMessage());
    }
}
