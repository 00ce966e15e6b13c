package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged and hostile LUKS headers, a wrong passphrase and a missing secret: one clear exception each, in bounded
 * time, and nothing written.
 */
class LuksHostileTest {
    @TempDir
    Path dir;
    Path image;

    @BeforeEach
    void create() throws IOException {
        image = dir.resolve("h.luks");
        Imago.create(image, "luks", CreateOptions.builder().size(64 << 10)
                .secrets(Secrets.create().put("sec0", "abc".toCharArray())).option("key-secret", "sec0")
                .option("iter-time", "10").build());
    }

    private void patch(long offset, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), offset);
        }
    }

    private static byte[] u32(long v) {
        return ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt((int) v).array();
    }

    private static byte[] text(String s) {
        return Arrays.copyOf(s.getBytes(StandardCharsets.US_ASCII), 32);
    }

    private <T extends Throwable> T refused(Class<T> type, String fragment) {
        T e = assertThrows(type, () -> {
            try (Image i = LuksQemuTest.open(image, false)) {
                LuksQemuTest.readAll(i);
            }
        });
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
        return e;
    }

    @Test
    void truncatedHeader() throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
            ch.truncate(300);
        }
        refused(CorruptImageException.class, "truncated LUKS header");
    }

    @Test
    void keyMaterialPastTheEnd() throws IOException {
        patch(LuksHeader.SLOTS_OFFSET + 40, u32(1L << 30));
        refused(CorruptImageException.class, "key slot 0's key material");
    }

    @Test
    void payloadOverTheHeaderOrTheKeyMaterial() throws IOException {
        patch(LuksHeader.PAYLOAD_OFFSET, u32(0));
        refused(CorruptImageException.class, "payload offset 0 overlaps the header");
        patch(LuksHeader.PAYLOAD_OFFSET, u32(100));
        refused(CorruptImageException.class, "overlaps the payload at 51200");
    }

    @Test
    void stripesOtherThanLuks1s() throws IOException {
        patch(LuksHeader.SLOTS_OFFSET + 44, u32(0xffffffffL));
        refused(CorruptImageException.class, "4294967295 stripes");
    }

    @Test
    void absurdIterationsAreRefusedAtOnce() throws IOException {
        patch(LuksHeader.SLOTS_OFFSET + 4, u32(0xffffffffL));
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            refused(ImageLimitException.class, "key slot 0 asks for 4294967295 PBKDF2 iterations");
        });
        patch(LuksHeader.MK_ITERATIONS_OFFSET, u32(0xffffffffL));
        refused(ImageLimitException.class, "the master key digest asks for 4294967295");
    }

    @Test
    void theLimitCanBeRaisedOrLowered() throws IOException {
        ImageLimitException e = assertThrows(ImageLimitException.class, () -> Imago.opener().path(image)
                .format("luks").secret("sec0", "abc".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0")
                .option(LuksKeys.MAX_ITERATIONS_OPTION, "999").open().close());
        assertTrue(e.getMessage().contains("pbkdf-max-iterations"), e.getMessage());
    }

    @Test
    void unknownCipherHashAndVersionAreNamed() throws IOException {
        byte[] original = Files.readAllBytes(image);
        patch(LuksHeader.CIPHER_NAME_OFFSET, text("blowfish"));
        refused(UnsupportedFeatureException.class,
                "cipher 'blowfish' is not supported (only aes, serpent, twofish and cast5)");
        Files.write(image, original);
        // ciphers imago has, in combinations qemu-img refuses: one clear exception each
        patch(LuksHeader.CIPHER_NAME_OFFSET, text("cast5"));
        refused(UnsupportedFeatureException.class, "cipher mode 'xts-plain64' is not supported with cast5");
        Files.write(image, original);
        patch(LuksHeader.CIPHER_NAME_OFFSET, text("serpent"));
        patch(LuksHeader.CIPHER_MODE_OFFSET, text("xts-essiv:sha1"));
        refused(UnsupportedFeatureException.class, "No Serpent cipher with key size 20 available");
        Files.write(image, original);
        patch(LuksHeader.CIPHER_NAME_OFFSET, text("twofish"));
        patch(LuksHeader.CIPHER_MODE_OFFSET, text("cbc-plain64"));
        refused(CorruptImageException.class, "key length 64 does not fit twofish in cbc mode");
        Files.write(image, original);
        patch(LuksHeader.CIPHER_MODE_OFFSET, text("xts-benbi"));
        refused(UnsupportedFeatureException.class, "'xts-benbi'");
        Files.write(image, original);
        patch(LuksHeader.HASH_SPEC_OFFSET, text("whirlpool"));
        refused(UnsupportedFeatureException.class, "hash 'whirlpool'");
        Files.write(image, original);
        // version 2 is read as LUKS2, whose header a LUKS1 one is not
        patch(LuksHeader.VERSION_OFFSET, new byte[] {0, 2});
        refused(CorruptImageException.class, "LUKS2 header size");
    }

    @Test
    void wrongPassphraseChangesNothing() throws IOException {
        byte[] before = Files.readAllBytes(image);
        ImageException e = assertThrows(ImageException.class, () -> Imago.opener().path(image).format("luks")
                .writable(true).secret("sec0", "abd".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0")
                .open().close());
        assertEquals("Invalid password, cannot unlock any keyslot", e.getMessage().substring(
                e.getMessage().indexOf(": ") + 2));
        assertFalse(e.getMessage().contains("abd"));
        assertArrayEquals(before, Files.readAllBytes(image));
        ImageException missing = assertThrows(ImageException.class, () -> Imago.opener().path(image).format("luks")
                .option("key-secret", "nope").open().close());
        assertTrue(missing.getMessage().contains("No secret with id 'nope'"), missing.getMessage());
    }

    @Test
    void withoutASecretTheHeaderShowsButNoDataIsRead() throws IOException {
        try (Image i = Imago.opener().path(image).metadataOnly(true).open()) {
            assertEquals("luks", i.format());
            assertEquals(64 << 10, i.size());
            Map<String, Object> fs = i.info().formatSpecific();
            assertEquals("aes-256", fs.get("cipher-alg"));
            assertEquals("xts", fs.get("cipher-mode"));
            ImageException e = assertThrows(ImageException.class, () -> i.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("Parameter 'key-secret' is required for cipher"), e.getMessage());
        }
        assertThrows(ImageException.class, () -> Imago.opener().path(image).writable(true).open().close());
        // as qemu-img map, check, compare and convert: an open for data fails at once without a key
        ImageException e = assertThrows(ImageException.class, () -> Imago.opener().path(image).open().close());
        assertTrue(e.getMessage().contains("Parameter 'key-secret' is required for cipher"), e.getMessage());
    }

    @Test
    void secretsNeverShowTheirValues() {
        Secrets s = Secrets.create().put("sec0", "hunter2".toCharArray());
        assertEquals("Secrets[sec0]", s.toString());
        byte[] copy = s.get("sec0").orElseThrow();
        assertEquals("hunter2", new String(copy, StandardCharsets.UTF_8));
        s.close();
        assertTrue(s.get("sec0").isEmpty());
        assertTrue(CreateOptions.builder().secrets(Secrets.create().put("k", "hunter2".toCharArray())).build()
                .toString().contains("Secrets[k]"));
        assertFalse(CreateOptions.builder().secrets(Secrets.create().put("k", "hunter2".toCharArray())).build()
                .toString().contains("hunter2"));
    }
}
