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
     * The JDK's own PBKDF2 factories agree for text passwords, over several output blocks; for MD5, which the JDK has
     * no factory for, Bouncy Castle's PBKDF2.
     */
    @Test
    void pbkdf2MatchesTheJdksFactories() throws Exception {
        for (LuksHash h : LuksHash.values()) {
            byte[] salt = new byte[32];
            new Random(h.ordinal()).nextBytes(salt);
            int length = 2 * h.length() + 5;
            byte[] expected;
            if (h == LuksHash.MD5) {
                PKCS5S2ParametersGenerator g = new PKCS5S2ParametersGenerator(new MD5Digest());
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
