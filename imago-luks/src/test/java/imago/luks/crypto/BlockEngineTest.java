package imago.luks.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HexFormat;
import java.util.Random;
import org.bouncycastle.crypto.BufferedBlockCipher;
import org.bouncycastle.crypto.DefaultBufferedBlockCipher;
import org.bouncycastle.crypto.InvalidCipherTextException;
import org.bouncycastle.crypto.engines.CAST5Engine;
import org.bouncycastle.crypto.engines.SerpentEngine;
import org.bouncycastle.crypto.engines.TwofishEngine;
import org.bouncycastle.crypto.modes.CBCBlockCipher;
import org.bouncycastle.crypto.modes.SICBlockCipher;
import org.bouncycastle.crypto.params.KeyParameter;
import org.bouncycastle.crypto.params.ParametersWithIV;
import org.junit.jupiter.api.Test;

/**
 * The engines under the sector modes: each cipher against its designers' published vectors (so the key and block
 * byte orders are the standard's), and imago's own CBC and CTR over the Bouncy Castle engines against Bouncy Castle's
 * modes. XTS over them is the AES code path ({@link SectorCipherTest}: IEEE 1619's vectors) on another engine, and
 * qemu-img reads and writes it ({@code LuksCipherQemuTest}).
 */
class BlockEngineTest {
    private static final HexFormat HEX = HexFormat.of();

    /**
     * Serpent: NESSIE's Serpent-128 vectors, set 1, vector 0 (the byte order the kernel, nettle and LUKS use);
     * Twofish: the paper's ECB_TBL.TXT, I=1 (128 and 256-bit zero keys); CAST5: RFC 2144 Appendix B.1 (128-bit key).
     */
    @Test
    void enginesMatchPublishedVectors() {
        String[][] vectors = {
            {"SERPENT", "80000000000000000000000000000000", "00000000000000000000000000000000",
                "264e5481eff42a4606abda06c0bfda3d"},
            {"TWOFISH", "00000000000000000000000000000000", "00000000000000000000000000000000",
                "9f589f5cf6122c32b6bfec2f2ae8c35a"},
            {"TWOFISH", "0000000000000000000000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000", "57ff739d4dc92c1bd7fc01700cc8216f"},
            {"CAST5", "0123456712345678234567893456789a", "0123456789abcdef", "238b4fe5847e44b2"},
        };
        for (String[] v : vectors) {
            BlockEngine e = CipherAlgorithm.valueOf(v[0]).engine(HEX.parseHex(v[1]));
            byte[] buf = HEX.parseHex(v[2]);
            e.encrypt(buf, 0, buf.length, buf, 0);
            assertEquals(v[3], HEX.formatHex(buf), v[0] + " " + v[1]);
            e.decrypt(buf, 0, buf.length, buf, 0);
            assertEquals(v[2], HEX.formatHex(buf), v[0] + " decrypts");
        }
    }

    /** CBC and CTR of whole sectors, IV per sector, as Bouncy Castle's own modes compute them over its engines. */
    @Test
    void cbcAndCtrAreBouncyCastlesModes() throws InvalidCipherTextException {
        Random r = new Random(5);
        for (CipherAlgorithm a : new CipherAlgorithm[] {CipherAlgorithm.SERPENT, CipherAlgorithm.TWOFISH,
            CipherAlgorithm.CAST5}) {
            for (SectorCipher.Mode mode : new SectorCipher.Mode[] {SectorCipher.Mode.CBC, SectorCipher.Mode.CTR}) {
                byte[] key = new byte[16];
                r.nextBytes(key);
                IvGenerator ivgen = IvGenerator.of(IvGenerator.Kind.PLAIN64, a, null, key);
                SectorCipher c = SectorCipher.of(a, mode, key, ivgen, 512);
                byte[] data = new byte[4 * 512];
                r.nextBytes(data);
                byte[] ours = data.clone();
                // CAST5's 8-byte counters are the sector numbers' 64 bits: near 2^64 the count carries through them all
                long first = a == CipherAlgorithm.CAST5 ? -3 : 77;
                c.encrypt(ours, 0, ours.length, first);
                for (int s = 0; s < 4; s++) {
                    byte[] iv = new byte[a.blockBytes()];
                    ivgen.ivs(first + s, 1, iv);
                    org.bouncycastle.crypto.BlockCipher engine = switch (a) {
                        case SERPENT -> new SerpentEngine();
                        case TWOFISH -> new TwofishEngine();
                        default -> new CAST5Engine();
                    };
                    BufferedBlockCipher bc = new DefaultBufferedBlockCipher(mode == SectorCipher.Mode.CBC
                            ? CBCBlockCipher.newInstance(engine) : SICBlockCipher.newInstance(engine));
                    bc.init(true, new ParametersWithIV(new KeyParameter(key), iv));
                    byte[] expected = new byte[512];
                    int n = bc.processBytes(data, s * 512, 512, expected, 0);
                    bc.doFinal(expected, n);
                    byte[] got = new byte[512];
                    System.arraycopy(ours, s * 512, got, 0, 512);
                    assertArrayEquals(expected, got, a + " " + mode + " sector " + s);
                }
                c.decrypt(ours, 0, ours.length, first);
                assertArrayEquals(data, ours, a + " " + mode + " decrypts");
            }
        }
    }

    @Test
    void keySizesAndEssivAreTheFamilys() {
        assertTrue(CipherAlgorithm.SERPENT.validKey(24));
        assertFalse(CipherAlgorithm.CAST5.validKey(32));
        assertThrows(IllegalArgumentException.class, () -> CipherAlgorithm.TWOFISH.engine(new byte[20]));
        assertEquals("No Serpent cipher with key size 20 available",
                CipherAlgorithm.SERPENT.essivRefusal(LuksHash.SHA1, 16).orElseThrow());
        assertEquals("Cipher cast5-128 not supported with essiv",
                CipherAlgorithm.CAST5.essivRefusal(LuksHash.SHA256, 16).orElseThrow());
        assertTrue(CipherAlgorithm.CAST5.essivRefusal(LuksHash.MD5, 16).isEmpty());
        assertFalse(SectorCipher.supports(CipherAlgorithm.CAST5, SectorCipher.Mode.XTS));
    }
}
