package imago.luks.crypto;

import org.bouncycastle.crypto.BlockCipher;
import org.bouncycastle.crypto.engines.CAST5Engine;
import org.bouncycastle.crypto.engines.SerpentEngine;
import org.bouncycastle.crypto.engines.TwofishEngine;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * Serpent, Twofish and CAST5 on Bouncy Castle's lightweight engines, used directly (no JCE provider is registered).
 * Only {@link CipherAlgorithm#engine} makes one, after checking that Bouncy Castle is here.
 */
final class BcEngine extends BlockEngine {
    private final BlockCipher encrypt;
    private final BlockCipher decrypt;

    BcEngine(CipherAlgorithm algorithm, byte[] key) {
        super(algorithm.blockBytes());
        encrypt = engine(algorithm);
        encrypt.init(true, new KeyParameter(key));
        decrypt = engine(algorithm);
        decrypt.init(false, new KeyParameter(key));
    }

    private static BlockCipher engine(CipherAlgorithm algorithm) {
        return switch (algorithm) {
            case SERPENT -> new SerpentEngine();
            case TWOFISH -> new TwofishEngine();
            case CAST5 -> new CAST5Engine();
            case AES -> throw new IllegalArgumentException("AES runs on the JDK's provider");
        };
    }

    @Override
    void encrypt(byte[] in, int inOff, int len, byte[] out, int outOff) {
        run(encrypt, in, inOff, len, out, outOff);
    }

    @Override
    void decrypt(byte[] in, int inOff, int len, byte[] out, int outOff) {
        run(decrypt, in, inOff, len, out, outOff);
    }

    /** The engines read a whole block before writing it, so {@code in} and {@code out} may be the same bytes. */
    private void run(BlockCipher c, byte[] in, int inOff, int len, byte[] out, int outOff) {
        for (int b = 0; b < len; b += blockBytes) {
            c.processBlock(in, inOff + b, out, outOff + b);
        }
    }
}
