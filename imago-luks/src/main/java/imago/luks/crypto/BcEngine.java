package imago.luks.crypto;

import org.bouncycastle.crypto.BlockCipher;
import org.bouncycastle.crypto.engines.CAST5Engine;
import org.bouncycastle.crypto.engines.SerpentEngine;
import org.bouncycastle.crypto.engines.TwofishEngine;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * Serpent, Twofish and CAST5 on Bouncy Castle's lightweight engines, used directly (no JCE provider is registered).
 * Only {@link CipherAlgorithm#engine} makes one, after checking that Bouncy Castle is here; it names the engine by the
 * cipher's LUKS name, so this class stays below the enum (no class cycle).
 */
final class BcEngine extends BlockEngine {
    private final BlockCipher encrypt;
    private final BlockCipher decrypt;

    BcEngine(String luksName, byte[] key) {
        this(engine(luksName), engine(luksName), key);
    }

    private BcEngine(BlockCipher encrypt, BlockCipher decrypt, byte[] key) {
        super(encrypt.getBlockSize());
        this.encrypt = encrypt;
        encrypt.init(true, new KeyParameter(key));
        this.decrypt = decrypt;
        decrypt.init(false, new KeyParameter(key));
    }

    private static BlockCipher engine(String luksName) {
        return switch (luksName) {
            case "serpent" -> new SerpentEngine();
            case "twofish" -> new TwofishEngine();
            case "cast5" -> new CAST5Engine();
            default -> throw new IllegalArgumentException(luksName + " has no Bouncy Castle engine here");
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
