package imago.luks.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import org.bouncycastle.crypto.digests.MD5Digest;
import org.bouncycastle.crypto.digests.RIPEMD160Digest;
import org.bouncycastle.crypto.generators.PKCS5S2ParametersGenerator;
import org.bouncycastle.crypto.params.KeyParameter;
import org.junit.jupiter.api.Test;

class KeyDerivationTest {
    private static final HexFormat HEX = HexFormat.of();
    private static final byte[] PASSWORD = "password".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] SALT = "salt".getBytes(StandardCharsets.US_ASCII);

    /** RFC 6070's PBKDF2-HMAC-SHA1 vectors. */
    @Test
    void pbkdf2MatchesRfc6070() {
        assertEquals("0c60c80f961f0e71f3a9b524af6012062fe037a6",
                HEX.formatHex(Pbkdf2.derive(LuksHash.SHA1, PASSWORD, SALT, 1, 20)));
        assertEquals("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
                HEX.formatHex(Pbkdf2.derive(LuksHash.SHA1, PASSWORD, SALT, 2, 20)));
        assertEquals("4b007901b765489abead49d926f721d065a429c1",
                HEX.formatHex(Pbkdf2.derive(LuksHash.SHA1, PASSWORD, SALT, 4096, 20)));
    }

    /**
     * The JDK's own PBKDF2 factories agree for text passwords, over several output blocks; for MD5 and RIPEMD-160,
     * which the JDK has no factory for, Bouncy Castle's PBKDF2.
     */
    @Test
    void pbkdf2MatchesTheJdksFactories() throws Exception {
        for (LuksHash h : LuksHash.values()) {
            byte[] salt = new byte[32];
            new Random(h.ordinal()).nextBytes(salt);
            int length = 2 * h.length() + 5;
            byte[] expected;
            if (h.hmacName() == null || h == LuksHash.MD5) {
                PKCS5S2ParametersGenerator g = new PKCS5S2ParametersGenerator(h == LuksHash.MD5 ? new MD5Digest()
                        : new RIPEMD160Digest());
                g.init("abc".getBytes(StandardCharsets.US_ASCII), salt, 1000);
                expected = ((KeyParameter) g.generateDerivedParameters(length * 8)).getKey();
            } else {
                SecretKeyFactory f = SecretKeyFactory.getInstance("PBKDF2With" + h.hmacName());
                expected = f.generateSecret(new PBEKeySpec("abc".toCharArray(), salt, 1000, length * 8))
                        .getEncoded();
            }
            assertArrayEquals(expected, Pbkdf2.derive(h, "abc".getBytes(StandardCharsets.US_ASCII), salt, 1000,
                    length), h.luksName());
        }
    }

    /**
     * HMAC-RIPEMD160 as RFC 2286 gives it (its test cases 1, 2 and 6: a short key, a text key, a key longer than the
     * block), through PBKDF2's pseudo-random function.
     */
    @Test
    void hmacRipemd160MatchesRfc2286() {
        byte[] key1 = new byte[20];
        Arrays.fill(key1, (byte) 0x0b);
        assertEquals("24cb4bd67d20fc1a5d2ed7732dcc39377f0a5668", hmac(LuksHash.RIPEMD160, key1, "Hi There"));
        assertEquals("dda6c0213a485a9e24f4742064a7f033b43c4069", hmac(LuksHash.RIPEMD160,
                "Jefe".getBytes(StandardCharsets.US_ASCII), "what do ya want for nothing?"));
        byte[] key6 = new byte[80];
        Arrays.fill(key6, (byte) 0xaa);
        assertEquals("6466ca07ac5eac29e1bd523e5ada7605b791fd8b", hmac(LuksHash.RIPEMD160, key6,
                "Test Using Larger Than Block-Size Key - Hash Key First"));
    }

    /**
     * PBKDF2-HMAC-RIPEMD160, which has no RFC vectors: values Python's {@code hashlib.pbkdf2_hmac('ripemd160', ...)}
     * (OpenSSL's) printed, one and two output blocks, one and many iterations, the empty password; and RIPEMD-160
     * of "abc" (its specification's test vector), the digest the anti-forensic diffuser hashes with.
     */
    @Test
    void pbkdf2Ripemd160MatchesOpenSsl() throws Exception {
        assertEquals("b725258b125e0bacb0e2307e34feb16a4d0d6aed",
                HEX.formatHex(Pbkdf2.derive(LuksHash.RIPEMD160, PASSWORD, SALT, 1, 20)));
        assertEquals("99a40d3fe4ee95869791d9faa24864562782762171480b620ca8bed3dafbbcac",
                HEX.formatHex(Pbkdf2.derive(LuksHash.RIPEMD160, PASSWORD, SALT, 4096, 32)));
        assertEquals("1d3e9738c447d01e771c36e229ebf7fa9cb93cfb",
                HEX.formatHex(Pbkdf2.derive(LuksHash.RIPEMD160, new byte[0], SALT, 3, 20)));
        assertEquals("8eb208f7e05d987a9b044a8e98c6b087f15a0bfc",
                HEX.formatHex(LuksHash.RIPEMD160.digest().digest("abc".getBytes(StandardCharsets.US_ASCII))));
    }

    private static String hmac(LuksHash hash, byte[] key, String message) {
        Hmac mac = hash.hmac(key);
        byte[] m = message.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[mac.length()];
        mac.update(m, 0, m.length);
        mac.doFinal(out);
        // a second message under the same key gives the same value: doFinal starts afresh
        mac.update(m, 0, m.length);
        byte[] again = new byte[mac.length()];
        mac.doFinal(again);
        assertArrayEquals(out, again);
        return HEX.formatHex(out);
    }

    @Test
    void emptyPasswordIsHmacsZeroPaddedKey() throws Exception {
        SecretKeyFactory f = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256");
        byte[] expected = f.generateSecret(new PBEKeySpec(new char[] {0}, SALT, 3, 256)).getEncoded();
        assertArrayEquals(expected, Pbkdf2.derive(LuksHash.SHA256, new byte[0], SALT, 3, 32));
    }

    /** Split then merge gives the key back, for digest lengths that divide the key and ones that do not. */
    @Test
    void antiForensicSplitMergesBack() {
        SecureRandom random = new SecureRandom();
        for (LuksHash h : LuksHash.values()) {
            for (int keyBytes : new int[] {16, 32, 48, 64}) {
                byte[] key = new byte[keyBytes];
                random.nextBytes(key);
                byte[] material = AntiForensic.split(key, 4000, h, random);
                assertEquals(keyBytes * 4000, material.length);
                assertArrayEquals(key, AntiForensic.merge(material, keyBytes, 4000, h));
                material[123] ^= 1;
                assertFalse(Arrays.equals(key, AntiForensic.merge(material, keyBytes, 4000, h)),
                        "one flipped bit destroys the key");
            }
        }
    }

    @Test
    void measuresIterationsPerSecond() {
        long perSecond = Pbkdf2.iterationsPerSecond(LuksHash.SHA256, 20);
        System.out.println("PBKDF2-HMAC-SHA256 iterations per second: " + perSecond);
        assertFalse(perSecond < 10_000, "implausibly slow: " + perSecond);
    }
}
