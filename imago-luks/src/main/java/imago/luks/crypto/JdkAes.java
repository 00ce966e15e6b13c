package imago.luks.crypto;

import java.security.GeneralSecurityException;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES on the JDK's provider, whose ECB and CBC run on the CPU's AES instructions when it has them: one bulk call per
 * run of blocks. Each direction's cipher is made when first used (an XTS tweak key only ever encrypts).
 */
final class JdkAes extends BlockEngine {
    private final SecretKeySpec key;
    private Cipher encrypt;
    private Cipher decrypt;
    private Cipher cbc;
    /** CBC's output: the JDK copies what it encrypts in place to a new array first. */
    private byte[] out = new byte[0];

    JdkAes(byte[] key) {
        super(16);
        this.key = new SecretKeySpec(key, "AES");
    }

    @Override
    void encrypt(byte[] in, int inOff, int len, byte[] out, int outOff) {
        if (encrypt == null) {
            encrypt = ecb(Cipher.ENCRYPT_MODE);
        }
        run(encrypt, in, inOff, len, out, outOff);
    }

    @Override
    void decrypt(byte[] in, int inOff, int len, byte[] out, int outOff) {
        if (decrypt == null) {
            decrypt = ecb(Cipher.DECRYPT_MODE);
        }
        run(decrypt, in, inOff, len, out, outOff);
    }

    @Override
    void cbc(byte[] buf, int off, int len, byte[] iv, int ivOff, boolean encrypt) {
        if (out.length < len) {
            out = new byte[len];
        }
        try {
            if (cbc == null) {
                cbc = Cipher.getInstance("AES/CBC/NoPadding");
            }
            cbc.init(encrypt ? Cipher.ENCRYPT_MODE : Cipher.DECRYPT_MODE, key, new IvParameterSpec(iv, ivOff, 16));
            cbc.doFinal(buf, off, len, out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-CBC failed on whole blocks", e);
        }
        System.arraycopy(out, 0, buf, off, len);
    }

    private Cipher ecb(int mode) {
        try {
            Cipher c = Cipher.getInstance("AES/ECB/NoPadding");
            c.init(mode, key);
            return c;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK refused AES", e);
        }
    }

    /** The JDK first copies the input of an in-place call to a new array: callers keep those to small runs. */
    private static void run(Cipher c, byte[] in, int inOff, int len, byte[] out, int outOff) {
        try {
            c.doFinal(in, inOff, len, out, outOff);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES failed on whole blocks", e);
        }
    }
}
