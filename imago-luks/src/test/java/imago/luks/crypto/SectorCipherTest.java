package imago.luks.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

class SectorCipherTest {
    private static final HexFormat HEX = HexFormat.of();

    /** IEEE Std 1619-2007 Annex B, vectors 1-5 and 10: encryption and decryption, the data unit as IV. */
    @Test
    void xtsMatchesTheStandardsVectors() throws IOException {
        List<String> lines;
        try (InputStream in = getClass().getResourceAsStream("ieee1619-2007-xts-aes.txt")) {
            lines = new String(in.readAllBytes(), StandardCharsets.US_ASCII).lines()
                    .filter(l -> !l.startsWith("#") && !l.isBlank()).toList();
        }
        assertEquals(6, lines.size());
        for (String line : lines) {
            String[] f = line.split(" ");
            byte[] key = HEX.parseHex(f[1]);
            long unit = Long.parseLong(f[2], 16);
            byte[] plain = HEX.parseHex(f[3]);
            byte[] expected = HEX.parseHex(f[4]);
            SectorCipher c = SectorCipher.of(CipherAlgorithm.AES, SectorCipher.Mode.XTS, key,
                    IvGenerator.of(IvGenerator.Kind.PLAIN64, CipherAlgorithm.AES, null, key), plain.length);
            byte[] buf = plain.clone();
            c.encrypt(buf, 0, buf.length, unit);
            assertArrayEquals(expected, buf, "vector " + f[0] + " encrypts");
            c.decrypt(buf, 0, buf.length, unit);
            assertArrayEquals(plain, buf, "vector " + f[0] + " decrypts");
        }
    }

    /** A cipher of {@code a} in {@code mode} with a random key of its largest size; ESSIV hashes to fit. */
    static SectorCipher cipher(CipherAlgorithm a, SectorCipher.Mode mode, IvGenerator.Kind kind, Random r, int unit) {
        int k = a == CipherAlgorithm.CAST5 ? 16 : 32;
        byte[] key = new byte[mode == SectorCipher.Mode.XTS ? 2 * k : k];
        r.nextBytes(key);
        LuksHash essiv = a == CipherAlgorithm.CAST5 ? LuksHash.MD5 : LuksHash.SHA256;
        return SectorCipher.of(a, mode, key, IvGenerator.of(kind, a, essiv, key), unit);
    }

    /**
     * A run of sectors in one call gives what each sector alone gives, at any offset into the buffer, for every
     * cipher, mode and IV generator.
     */
    @Test
    void bulkRunsEqualSectorBySector() {
        Random r = new Random(7);
        for (CipherAlgorithm a : CipherAlgorithm.values()) {
            for (SectorCipher.Mode mode : SectorCipher.Mode.values()) {
                if (!SectorCipher.supports(a, mode)) {
                    continue;
                }
                for (IvGenerator.Kind kind : IvGenerator.Kind.values()) {
                    SectorCipher c = cipher(a, mode, kind, r, 512);
                    // past a batch (128 sectors) and across 2^32 (where plain wraps)
                    byte[] data = new byte[200 * 512 + 3];
                    r.nextBytes(data);
                    byte[] bulk = data.clone();
                    c.encrypt(bulk, 3, 200 * 512, 0xffffff90L);
                    byte[] single = data.clone();
                    for (int s = 0; s < 200; s++) {
                        c.encrypt(single, 3 + s * 512, 512, 0xffffff90L + s);
                    }
                    assertArrayEquals(single, bulk, a + " " + mode + " " + kind);
                    assertFalse(Arrays.equals(data, bulk), a + " " + mode + " " + kind + " encrypts");
                    c.decrypt(bulk, 3, 200 * 512, 0xffffff90L);
                    assertArrayEquals(data, bulk, a + " " + mode + " " + kind + " decrypts");
                }
            }
        }
    }

    /**
     * Buffers give what arrays give: direct and heap, in place and from one buffer into another, at positions that
     * are not 0, over runs longer than a batch; neither buffer's position moves.
     */
    @Test
    void buffersEqualArrays() {
        Random r = new Random(11);
        for (SectorCipher.Mode mode : SectorCipher.Mode.values()) {
            for (int unit : new int[] {512, 4096}) {
                SectorCipher c = cipher(CipherAlgorithm.AES, mode, IvGenerator.Kind.PLAIN64, r, unit);
                int len = 50 * 4096;
                byte[] data = new byte[len];
                r.nextBytes(data);
                byte[] expected = data.clone();
                c.encrypt(expected, 0, len, 77);
                String what = mode + " " + unit;

                ByteBuffer direct = ByteBuffer.allocateDirect(len + 10).position(10);
                direct.put(data).position(10);
                c.encrypt(direct, direct, 77);
                assertEquals(10, direct.position(), what);
                byte[] got = new byte[len];
                direct.get(10, got);
                assertArrayEquals(expected, got, what + " direct, in place");

                ByteBuffer heapSrc = ByteBuffer.allocate(len + 3).position(3).slice().put(data).flip();
                ByteBuffer out = ByteBuffer.allocateDirect(len);
                c.encrypt(heapSrc, out, 77);
                assertEquals(0, heapSrc.position(), what);
                out.get(0, got);
                assertArrayEquals(expected, got, what + " heap into direct");

                ByteBuffer heap = ByteBuffer.wrap(expected.clone(), 0, len);
                c.decrypt(heap, heap, 77);
                assertArrayEquals(data, heap.array(), what + " heap, in place, decrypts");
                c.decrypt(out, direct.slice(10, len), 77);
                direct.get(10, got);
                assertArrayEquals(data, got, what + " direct into direct decrypts");
            }
        }
    }

    /** CBC and its IVs against the JDK's own CBC with IVs computed here: plain, plain64 and ESSIV(SHA-256). */
    @Test
    void cbcIvsAreDmCrypts() throws GeneralSecurityException {
        byte[] key = new byte[16];
        new Random(3).nextBytes(key);
        long sector = 0x1_2345_6789L;
        for (IvGenerator.Kind kind : IvGenerator.Kind.values()) {
            byte[] iv = new byte[16];
            long n = kind == IvGenerator.Kind.PLAIN ? sector & 0xffffffffL : sector;
            for (int i = 0; i < 8; i++) {
                iv[i] = (byte) (n >>> (8 * i));
            }
            if (kind == IvGenerator.Kind.ESSIV) {
                Cipher essiv = Cipher.getInstance("AES/ECB/NoPadding");
                byte[] salt = java.security.MessageDigest.getInstance("SHA-256").digest(key);
                essiv.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(salt, "AES"));
                iv = essiv.doFinal(iv);
            }
            Cipher jdk = Cipher.getInstance("AES/CBC/NoPadding");
            jdk.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new IvParameterSpec(iv));
            byte[] data = new byte[512];
            new Random(4).nextBytes(data);
            byte[] expected = jdk.doFinal(data);
            SectorCipher c = SectorCipher.of(CipherAlgorithm.AES, SectorCipher.Mode.CBC, key,
                    IvGenerator.of(kind, CipherAlgorithm.AES, LuksHash.SHA256, key), 512);
            c.encrypt(data, 0, 512, sector);
            assertArrayEquals(expected, data, kind.toString());
        }
    }

    @Test
    void refusesBadKeysAndPartialUnits() {
        IvGenerator plain64 = IvGenerator.of(IvGenerator.Kind.PLAIN64, CipherAlgorithm.AES, null, null);
        assertThrows(IllegalArgumentException.class, () -> SectorCipher.of(CipherAlgorithm.AES, SectorCipher.Mode.XTS,
                new byte[20], plain64, 512));
        assertThrows(IllegalArgumentException.class, () -> SectorCipher.of(CipherAlgorithm.AES, SectorCipher.Mode.CBC,
                new byte[64], plain64, 512));
        assertThrows(IllegalArgumentException.class, () -> SectorCipher.of(CipherAlgorithm.CAST5,
                SectorCipher.Mode.XTS, new byte[32], IvGenerator.of(IvGenerator.Kind.PLAIN64, CipherAlgorithm.CAST5,
                        null, null), 512));
        assertThrows(IllegalArgumentException.class, () -> SectorCipher.of(CipherAlgorithm.CAST5,
                SectorCipher.Mode.CBC, new byte[16], plain64, 512), "16-byte IVs for 8-byte blocks");
        assertThrows(IllegalArgumentException.class, () -> IvGenerator.of(IvGenerator.Kind.ESSIV, CipherAlgorithm.AES,
                LuksHash.SHA512, new byte[32]));
        SectorCipher c = SectorCipher.of(CipherAlgorithm.AES, SectorCipher.Mode.XTS, new byte[32],
                IvGenerator.of(IvGenerator.Kind.PLAIN64, CipherAlgorithm.AES, null, null), 512);
        assertThrows(IllegalArgumentException.class, () -> c.encrypt(new byte[1024], 0, 1000, 0));
    }
}
