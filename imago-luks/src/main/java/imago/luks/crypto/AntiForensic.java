package imago.luks.crypto;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * LUKS1's anti-forensic information splitter: a key is stored as {@code stripes} blocks of its length, all but
 * the last random, chained through the hash-based diffusion function, so that destroying any one block destroys
 * the key.
 */
public final class AntiForensic {
    private AntiForensic() {
    }

    /** The key of {@code keyBytes} held in {@code material} ({@code keyBytes * stripes} bytes). */
    public static byte[] merge(byte[] material, int keyBytes, int stripes, LuksHash hash) {
        if (stripes < 1 || (long) keyBytes * stripes > material.length) {
            throw new IllegalArgumentException(stripes + " stripes of " + keyBytes + " bytes do not fit "
                    + material.length + " bytes");
        }
        byte[] d = new byte[keyBytes];
        for (int i = 0; i < stripes - 1; i++) {
            xor(d, material, i * keyBytes);
            diffuse(d, hash);
        }
        xor(d, material, (stripes - 1) * keyBytes);
        return d;
    }

    /** {@code key} split into {@code stripes} blocks ({@code key.length * stripes} bytes). */
    public static byte[] split(byte[] key, int stripes, LuksHash hash, SecureRandom random) {
        int n = key.length;
        byte[] material = new byte[n * stripes];
        random.nextBytes(material);
        byte[] d = new byte[n];
        for (int i = 0; i < stripes - 1; i++) {
            xor(d, material, i * n);
            diffuse(d, hash);
        }
        for (int k = 0; k < n; k++) {
            material[(stripes - 1) * n + k] = (byte) (d[k] ^ key[k]);
        }
        Arrays.fill(d, (byte) 0);
        return material;
    }

    private static void xor(byte[] d, byte[] material, int from) {
        for (int k = 0; k < d.length; k++) {
            d[k] ^= material[from + k];
        }
    }

    /** Replaces each digest-sized piece of {@code buf} by the hash of its big-endian index and itself. */
    static void diffuse(byte[] buf, LuksHash hash) {
        MessageDigest md = hash.digest();
        int h = hash.length();
        for (int i = 0, at = 0; at < buf.length; i++, at += h) {
            int n = Math.min(h, buf.length - at);
            md.update(new byte[] {(byte) (i >>> 24), (byte) (i >>> 16), (byte) (i >>> 8), (byte) i});
            md.update(buf, at, n);
            byte[] out = md.digest();
            System.arraycopy(out, 0, buf, at, n);
        }
    }
}
