package imago.luks.crypto;

import java.security.MessageDigest;
import org.bouncycastle.crypto.Digest;
import org.bouncycastle.crypto.digests.RIPEMD160Digest;
import org.bouncycastle.crypto.macs.HMac;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * RIPEMD-160, which the JDK lacks, on Bouncy Castle's lightweight digest, used directly (no JCE provider is
 * registered): as a {@link MessageDigest} for the anti-forensic diffuser and header checksums, and as an
 * {@link Hmac} for PBKDF2. Only {@link LuksHash} makes them, after checking that Bouncy Castle is here.
 */
final class BcDigests {
    private BcDigests() {
    }

    static MessageDigest ripemd160() {
        return new BcMessageDigest(new RIPEMD160Digest());
    }

    static Hmac ripemd160Hmac(byte[] key) {
        return new BcHmac(new RIPEMD160Digest(), key);
    }

    /** A Bouncy Castle digest behind the JDK's {@link MessageDigest}, so that callers need not know whose it is. */
    private static final class BcMessageDigest extends MessageDigest {
        private final Digest digest;

        BcMessageDigest(Digest digest) {
            super(digest.getAlgorithmName());
            this.digest = digest;
        }

        @Override
        protected int engineGetDigestLength() {
            return digest.getDigestSize();
        }

        @Override
        protected void engineUpdate(byte input) {
            digest.update(input);
        }

        @Override
        protected void engineUpdate(byte[] input, int offset, int len) {
            digest.update(input, offset, len);
        }

        @Override
        protected byte[] engineDigest() {
            byte[] out = new byte[digest.getDigestSize()];
            digest.doFinal(out, 0);
            return out;
        }

        @Override
        protected void engineReset() {
            digest.reset();
        }
    }

    /** Bouncy Castle's HMAC over one of its digests. */
    static final class BcHmac implements Hmac {
        private final HMac mac;

        BcHmac(Digest digest, byte[] key) {
            mac = new HMac(digest);
            mac.init(new KeyParameter(key));
        }

        @Override
        public int length() {
            return mac.getMacSize();
        }

        @Override
        public void update(byte[] b, int off, int len) {
            mac.update(b, off, len);
        }

        @Override
        public void doFinal(byte[] out) {
            // HMac.doFinal resets to the keyed state, ready for the next message
            mac.doFinal(out, 0);
        }
    }
}
