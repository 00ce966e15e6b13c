package imago.luks.crypto;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import java.util.Optional;

/**
 * The hash functions a LUKS header may name (its hash spec, for PBKDF2 and the anti-forensic diffuser) and the
 * ESSIV generator may use, by the names cryptsetup and qemu-img give them: the JDK's, and RIPEMD-160 on Bouncy
 * Castle, an optional module ({@link #available()} tells whether a hash can be used).
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
    SHA512("sha512", "SHA-512", "HmacSHA512", 64),
    /** RIPEMD-160 (qemu-img and cryptsetup offer it; the JDK has none, so Bouncy Castle's). */
    RIPEMD160("ripemd160", null, null, 20);

    private final String luksName;
    /** The JDK's digest name, or null for a Bouncy Castle one. */
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

    /** The known names, for the message refusing another: {@code md5, sha1, ... and ripemd160}. */
    public static String names() {
        LuksHash[] all = values();
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < all.length; i++) {
            b.append(i == 0 ? "" : i == all.length - 1 ? " and " : ", ").append(all[i].luksName);
        }
        return b.toString();
    }

    /** The name in LUKS headers and qemu-img options ({@code sha256}). */
    public String luksName() {
        return luksName;
    }

    /** The digest length in bytes. */
    public int length() {
        return length;
    }

    /** Whether this hash can be used here: the JDK's always, RIPEMD-160 when Bouncy Castle is in the module graph. */
    public boolean available() {
        return digestName != null || BouncyCastle.available();
    }

    /** The refusal of this hash when it is not {@link #available()}: what to add, by name. */
    public String missingBouncyCastle() {
        return BouncyCastle.missing("hash " + luksName);
    }

    /**
     * A new message digest.
     *
     * @throws UnsupportedOperationException if the hash needs Bouncy Castle and it is absent
     */
    public MessageDigest digest() {
        if (digestName == null) {
            requireAvailable();
            return BcDigests.ripemd160();
        }
        try {
            return MessageDigest.getInstance(digestName);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + digestName, e);
        }
    }

    /** A new HMAC keyed with {@code key} (which it copies). */
    Hmac hmac(byte[] key) {
        if (hmacName == null) {
            requireAvailable();
            return BcDigests.ripemd160Hmac(key);
        }
        return Hmac.jdk(hmacName, key);
    }

    /** The JDK's name of this hash's HMAC ({@code HmacSHA256}), or null if the JDK has none. */
    String hmacName() {
        return hmacName;
    }

    private void requireAvailable() {
        if (!available()) {
            throw new UnsupportedOperationException(missingBouncyCastle());
        }
    }
}
