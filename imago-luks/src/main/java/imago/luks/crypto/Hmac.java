package imago.luks.crypto;

import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import javax.crypto.Mac;
import javax.crypto.ShortBufferException;
import javax.crypto.spec.SecretKeySpec;

/**
 * A keyed HMAC, PBKDF2's pseudo-random function: the JDK's {@link Mac} for the hashes the JDK has, Bouncy Castle's
 * {@code HMac} for RIPEMD-160 (see {@link BcDigests}). Each {@link #doFinal} ends one message and starts the next
 * under the same key. Not thread-safe. Not sealed: its permits clause would name the Bouncy Castle implementation,
 * whose class cannot be loaded when Bouncy Castle is absent.
 */
interface Hmac {
    /** The output length in bytes. */
    int length();

    /** Adds {@code len} bytes of {@code b} from {@code off} to the message. */
    void update(byte[] b, int off, int len);

    /** Writes the message's HMAC to the first {@link #length()} bytes of {@code out}, and starts a new message. */
    void doFinal(byte[] out);

    /** The JDK's HMAC named {@code hmacName} ({@code HmacSHA256}) under {@code key}. */
    static Hmac jdk(String hmacName, byte[] key) {
        return new Jdk(hmacName, key);
    }

    /** An HMAC on the JDK's {@link Mac}. */
    final class Jdk implements Hmac {
        private final Mac mac;

        Jdk(String hmacName, byte[] key) {
            try {
                mac = Mac.getInstance(hmacName);
                // HMAC pads a short key with zeroes, so the empty key is the one zero byte SecretKeySpec accepts
                mac.init(new SecretKeySpec(key.length == 0 ? new byte[1] : key, hmacName));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JDK lacks " + hmacName, e);
            } catch (InvalidKeyException e) {
                throw new IllegalStateException(hmacName + " refused its key", e);
            }
        }

        @Override
        public int length() {
            return mac.getMacLength();
        }

        @Override
        public void update(byte[] b, int off, int len) {
            mac.update(b, off, len);
        }

        @Override
        public void doFinal(byte[] out) {
            try {
                mac.doFinal(out, 0);
            } catch (ShortBufferException e) {
                throw new IllegalArgumentException("HMAC output of " + out.length + " bytes is too short", e);
            }
        }
    }
}
