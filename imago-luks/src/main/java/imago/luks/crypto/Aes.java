package imago.luks.crypto;

import java.security.GeneralSecurityException;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;

/** The JDK's AES, as the sector ciphers and IV generators use it: ECB over whole blocks, in place. */
final class Aes {
    private Aes() {
    }

    /** A cipher for {@code transformation}, initialised with {@code key} for {@code mode} when it is ECB. */
    static Cipher cipher(String transformation, int mode, byte[] key) {
        try {
            Cipher c = Cipher.getInstance(transformation);
            if (transformation.contains("ECB")) {
                c.init(mode, new SecretKeySpec(key, "AES"));
            }
            return c;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK refused AES", e);
        }
    }

    /**
     * Runs {@code c} over {@code len} bytes (whole blocks) of {@code buf} in place. The JDK first copies the input
     * of an in-place call to a new array: for small runs only.
     */
    static void ecb(Cipher c, byte[] buf, int off, int len) {
        ecb(c, buf, off, len, buf, off);
    }

    /** Runs {@code c} over {@code len} bytes (whole blocks) of {@code in} into {@code out}. */
    static void ecb(Cipher c, byte[] in, int inOff, int len, byte[] out, int outOff) {
        try {
            c.doFinal(in, inOff, len, out, outOff);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES failed on whole blocks", e);
        }
    }
}
