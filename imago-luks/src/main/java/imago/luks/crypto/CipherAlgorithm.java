package imago.luks.crypto;

import java.util.Locale;
import java.util.Optional;

/**
 * The block ciphers LUKS payloads are encrypted with, as qemu-img 7.2 offers them: AES on the JDK's provider (and so
 * the CPU's AES instructions), Serpent, Twofish and CAST5 on Bouncy Castle's lightweight engines. Bouncy Castle is an
 * optional module: {@link #available()} tells whether a cipher can be used, and {@link #engine} refuses by name when
 * it cannot.
 */
public enum CipherAlgorithm {
    /** AES (Rijndael with 128-bit blocks): 128, 192 or 256-bit keys. */
    AES("aes", "AES", 16, 16, 24, 32),
    /** Serpent: 128, 192 or 256-bit keys. */
    SERPENT("serpent", "Serpent", 16, 16, 24, 32),
    /** Twofish: 128, 192 or 256-bit keys. */
    TWOFISH("twofish", "Twofish", 16, 16, 24, 32),
    /** CAST5 (CAST-128, RFC 2144): 64-bit blocks, a 128-bit key (the only size qemu-img offers). */
    CAST5("cast5", "CAST5", 8, 16);

    private final String luksName;
    private final String familyName;
    private final int blockBytes;
    private final int[] keySizes;

    CipherAlgorithm(String luksName, String familyName, int blockBytes, int... keySizes) {
        this.luksName = luksName;
        this.familyName = familyName;
        this.blockBytes = blockBytes;
        this.keySizes = keySizes;
    }

    /** The cipher a LUKS header's cipher name ({@code aes}, {@code serpent}) names (case-insensitive), if known. */
    public static Optional<CipherAlgorithm> named(String luksName) {
        String n = luksName.toLowerCase(Locale.ROOT);
        for (CipherAlgorithm a : values()) {
            if (a.luksName.equals(n)) {
                return Optional.of(a);
            }
        }
        return Optional.empty();
    }

    /** The name in LUKS headers and in qemu-img's {@code cipher-alg} before the key bits ({@code serpent}). */
    public String luksName() {
        return luksName;
    }

    /** The name qemu-img's messages give the family ({@code Serpent}). */
    public String familyName() {
        return familyName;
    }

    /** The block length in bytes (16, or 8 for CAST5). */
    public int blockBytes() {
        return blockBytes;
    }

    /** Whether this cipher takes keys of {@code keyBytes}. */
    public boolean validKey(int keyBytes) {
        for (int k : keySizes) {
            if (k == keyBytes) {
                return true;
            }
        }
        return false;
    }

    /** qemu-img's name for this cipher with a key of {@code keyBytes} ({@code serpent-256}). */
    public String qemuName(int keyBytes) {
        return luksName + "-" + keyBytes * 8;
    }

    /** Whether this cipher can be used here: AES always; the others when Bouncy Castle is in the module graph. */
    public boolean available() {
        return this == AES || BouncyCastle.available();
    }

    /**
     * The refusal of a cipher (as {@code named}) that needs Bouncy Castle when it is absent: what to add, by name.
     */
    public static String missingBouncyCastle(String named) {
        return BouncyCastle.missing("cipher " + named);
    }

    /**
     * Why ESSIV with {@code hash} cannot go with this cipher, in qemu-img's words, or empty if it can: the ESSIV
     * cipher is of this family with a key as long as the hash (an MD5 ESSIV key is 128 bits, a SHA-256 one 256).
     */
    public Optional<String> essivRefusal(LuksHash hash, int keyBytes) {
        if (validKey(hash.length())) {
            return Optional.empty();
        }
        return Optional.of(this == CAST5 ? "Cipher " + qemuName(keyBytes) + " not supported with essiv"
                : "No " + familyName + " cipher with key size " + hash.length() + " available");
    }

    /**
     * An engine with {@code key}.
     *
     * @throws IllegalArgumentException if the key length does not fit this cipher
     * @throws UnsupportedOperationException if the cipher needs Bouncy Castle and it is absent
     */
    BlockEngine engine(byte[] key) {
        if (!validKey(key.length)) {
            throw new IllegalArgumentException(familyName + " takes no " + key.length * 8 + "-bit key");
        }
        if (this == AES) {
            return new JdkAes(key);
        }
        if (!available()) {
            throw new UnsupportedOperationException(BouncyCastle.missing("cipher " + luksName));
        }
        return new BcEngine(luksName, key);
    }
}
