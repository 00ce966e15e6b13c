package imago.luks.crypto;

/**
 * One key of a {@link CipherAlgorithm}, both directions, over whole blocks: the seam the sector modes (XTS, CBC, ECB,
 * CTR) and the ESSIV generator are built on. Not thread-safe.
 */
abstract sealed class BlockEngine permits JdkAes, BcEngine {
    final int blockBytes;
    /** CBC's chaining value and the ciphertext block it saves while decrypting in place. */
    private byte[] chain;
    private byte[] saved;

    BlockEngine(int blockBytes) {
        this.blockBytes = blockBytes;
    }

    /** Encrypts {@code len} bytes (whole blocks) of {@code in} into {@code out}, which may be the same bytes. */
    abstract void encrypt(byte[] in, int inOff, int len, byte[] out, int outOff);

    /** Decrypts {@code len} bytes (whole blocks) of {@code in} into {@code out}, which may be the same bytes. */
    abstract void decrypt(byte[] in, int inOff, int len, byte[] out, int outOff);

    /**
     * CBC over {@code len} bytes (whole blocks) of {@code buf} in place, chained from the IV at {@code iv[ivOff]}:
     * block by block here, in one call where the provider has CBC of its own.
     */
    void cbc(byte[] buf, int off, int len, byte[] iv, int ivOff, boolean encrypt) {
        int bs = blockBytes;
        if (chain == null) {
            chain = new byte[bs];
            saved = new byte[bs];
        }
        System.arraycopy(iv, ivOff, chain, 0, bs);
        for (int b = off; b < off + len; b += bs) {
            if (encrypt) {
                xor(buf, b, chain, bs);
                encrypt(buf, b, bs, buf, b);
                System.arraycopy(buf, b, chain, 0, bs);
            } else {
                System.arraycopy(buf, b, saved, 0, bs);
                decrypt(buf, b, bs, buf, b);
                xor(buf, b, chain, bs);
                byte[] t = chain;
                chain = saved;
                saved = t;
            }
        }
    }

    private static void xor(byte[] buf, int at, byte[] with, int n) {
        for (int i = 0; i < n; i++) {
            buf[at + i] ^= with[i];
        }
    }
}
