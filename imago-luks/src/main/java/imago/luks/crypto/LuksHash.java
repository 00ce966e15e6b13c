package imago.luks.crypto;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import java.util.Optional;
import javax.crypto.Mac;

/**
 * The hash functions a LUKS header may name (its hash spec, for PBKDF2 and the anti-forensic diffuser) and the
 * ESSIV generator may use, by the names cryptsetup and qemu-img give them.
 */
public enum LuksHash {
    /** MD5 (qemu-img offers it; its 128-bit digest is the ESSIV key of CAST5-128). */
    MD5("md5", "MD5", "HmacMD5", 16),
    /** SHA-1 (cryptsetup's LUKS1 default before 1.7). */
    SHA1("sha1", "SHA-1", "HmacSHA1", 20),
    /** SHA-224. */
    SHA224("sha224", "SHA-224", "HmacSHA224", 28),
    /** SHA-256 (qemu-img's default). */
    SHA256("sha256", "SHA-256", "HmacSHA256", 32),
    /** SHA-384. */
    SHA384("sha384", "SHA-384", "HmacSHA384", 48),
    /** SHA-512. */
    SHA512("sha512", "SHA-512", "HmacSHA512", 64);

    private final String luksName;
    private final String digestName;
    private final String hmacName;
    private final int length;

    LuksHash(String luksName, String digestName, String hmacName, int length) {
        this.luksName = luksName;
        this.digestName = digestName;
        this.hmacName = hmacName;
        this.length = length;
    }

    /** The hash called {@code name} in a LUKS header or a qemu-img option (case-insensitive), if known. */
    public static Optional<LuksHash> named(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (LuksHash h : values()) {
            if (h.luksName.equals(n)) {
                return Optional.of(h);
            }
        }
        return Optional.empty();
    }

    /** The name in LUKS headers and qemu-img options ({@code sha256}). */
    public String luksName() {
        return luksName;
    }

    /** The digest length in bytes. */
    public int length() {
        return length;
    }

    /** A new message digest. */
    public MessageDigest digest() {
        try {
            return MessageDigest.getInstance(digestName);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + digestName, e);
        }
    }

    /** A new, uninitialised HMAC. */
    Mac hmac() {
        try {
            return Mac.getInstance(hmacName);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + hmacName, e);
        }
    }

    /** The name of the HMAC for {@link javax.crypto.spec.SecretKeySpec}. */
    String hmacName() {
        return hmacName;
    }
}
