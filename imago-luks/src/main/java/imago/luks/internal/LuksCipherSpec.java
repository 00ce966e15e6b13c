package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.luks.crypto.CipherAlgorithm;
import imago.luks.crypto.IvGenerator;
import imago.luks.crypto.LuksHash;
import imago.luks.crypto.SectorCipher;
import java.util.Locale;
import java.util.Optional;

/**
 * The payload's cipher: AES, Serpent, Twofish or CAST5 in XTS, CBC, ECB or CTR mode, its IV generator (with ESSIV's
 * hash) and key length, as the header spells it ({@code serpent}, {@code xts-plain64}, {@code cbc-essiv:sha256}) and
 * as qemu-img's options and {@code info} name it ({@code serpent-256}, {@code xts}, {@code essiv}, {@code sha256}).
 * These are the combinations qemu-img 7.2 accepts: every cipher in every mode but CAST5 in XTS (its blocks are 8
 * bytes), ESSIV with a hash as long as a key of the cipher's family.
 *
 * @param ivHash ESSIV's hash, {@code null} for the other generators
 */
record LuksCipherSpec(CipherAlgorithm algorithm, SectorCipher.Mode mode, IvGenerator.Kind ivgen, LuksHash ivHash,
        int keyBytes) {

    /**
     * The spec a header names.
     *
     * @throws UnsupportedFeatureException naming a cipher, mode, IV generator or hash imago does not have, or a
     *         cipher that needs Bouncy Castle when it is absent
     * @throws CorruptImageException if the key length does not fit the cipher
     */
    static LuksCipherSpec fromHeader(String resource, String cipherName, String cipherMode, long keyBytes)
            throws UnsupportedFeatureException, CorruptImageException {
        CipherAlgorithm algorithm = CipherAlgorithm.named(cipherName).orElseThrow(() -> unsupported(resource,
                "cipher '" + cipherName + "' is not supported (only aes, serpent, twofish and cast5)"));
        int dash = cipherMode.indexOf('-');
        SectorCipher.Mode mode = mode(dash < 0 ? cipherMode : cipherMode.substring(0, dash));
        if (mode == null) {
            throw unsupported(resource, "cipher mode '" + cipherMode + "' is not supported (only xts, cbc, ecb and "
                    + "ctr)");
        }
        if (!SectorCipher.supports(algorithm, mode)) {
            throw unsupported(resource, "cipher mode '" + cipherMode + "' is not supported with " + cipherName
                    + " (XTS needs 16-byte blocks)");
        }
        String iv = dash < 0 ? "" : cipherMode.substring(dash + 1);
        int colon = iv.indexOf(':');
        String ivName = colon < 0 ? iv : iv.substring(0, colon);
        IvGenerator.Kind kind = ivgen(ivName);
        if (kind == null) {
            throw unsupported(resource, "IV generator '" + iv + "' of cipher mode '" + cipherMode
                    + "' is not supported (only plain, plain64 and essiv)");
        }
        if (keyBytes > 64 || !SectorCipher.validKeyLength(algorithm, mode, (int) keyBytes)) {
            throw new CorruptImageException(resource, LuksHeader.KEY_BYTES_OFFSET, "key length " + keyBytes
                    + " does not fit " + cipherName + " in " + mode.luksName() + " mode");
        }
        LuksHash hash = null;
        if (kind == IvGenerator.Kind.ESSIV) {
            String hashName = colon < 0 ? "" : iv.substring(colon + 1);
            hash = LuksHash.named(hashName).orElseThrow(() -> unsupported(resource, "ESSIV hash '" + hashName
                    + "' of cipher mode '" + cipherMode + "' is not supported"));
            String refusal = algorithm.essivRefusal(hash, cipherKeyBytes(mode, (int) keyBytes)).orElse(null);
            if (refusal != null) {
                throw unsupported(resource, "cipher mode '" + cipherMode + "': " + refusal);
            }
        } else if (colon >= 0) {
            throw unsupported(resource, "cipher mode '" + cipherMode + "' names a hash for IV generator " + ivName);
        }
        if (!algorithm.available()) {
            throw unsupported(resource, CipherAlgorithm.missingBouncyCastle(cipherName));
        }
        return new LuksCipherSpec(algorithm, mode, kind, hash, (int) keyBytes);
    }

    /**
     * The spec qemu-img's create options ask for ({@code cipher-alg}, {@code cipher-mode}, {@code ivgen-alg},
     * {@code ivgen-hash-alg}), with its defaults (aes-256, xts, plain64, sha256), refused in qemu-img's words.
     *
     * @throws IllegalArgumentException naming a value imago does not have, a combination qemu-img refuses, or a
     *         cipher that needs Bouncy Castle when it is absent
     */
    static LuksCipherSpec fromOptions(String alg, String mode, String ivgen, String ivHash) {
        String algName = alg == null ? "aes-256" : alg;
        CipherAlgorithm algorithm = null;
        int cipherKeyBytes = 0;
        for (CipherAlgorithm a : CipherAlgorithm.values()) {
            for (int k = 16; k <= 32; k += 8) {
                if (a.validKey(k) && a.qemuName(k).equals(algName)) {
                    algorithm = a;
                    cipherKeyBytes = k;
                }
            }
        }
        if (algorithm == null) {
            throw doesNotAccept("cipher-alg", alg);
        }
        SectorCipher.Mode m = mode(mode == null ? "xts" : mode);
        if (m == null) {
            throw doesNotAccept("cipher-mode", mode);
        }
        IvGenerator.Kind kind = ivgen(ivgen == null ? "plain64" : ivgen);
        if (kind == null) {
            throw doesNotAccept("ivgen-alg", ivgen);
        }
        LuksHash hash = optionHash(ivHash).orElseThrow(() -> doesNotAccept("ivgen-hash-alg", ivHash));
        if (kind == IvGenerator.Kind.ESSIV) {
            String refusal = algorithm.essivRefusal(hash, cipherKeyBytes).orElse(null);
            if (refusal != null) {
                throw new IllegalArgumentException(refusal);
            }
        } else {
            hash = null;
        }
        if (!SectorCipher.supports(algorithm, m)) {
            throw new IllegalArgumentException("Unsupported cipher mode " + m.luksName());
        }
        if (!algorithm.available()) {
            throw new IllegalArgumentException(CipherAlgorithm.missingBouncyCastle(algName));
        }
        return new LuksCipherSpec(algorithm, m, kind, hash,
                m == SectorCipher.Mode.XTS ? 2 * cipherKeyBytes : cipherKeyBytes);
    }

    private static SectorCipher.Mode mode(String name) {
        for (SectorCipher.Mode m : SectorCipher.Mode.values()) {
            if (m.luksName().equals(name)) {
                return m;
            }
        }
        return null;
    }

    private static IvGenerator.Kind ivgen(String name) {
        return switch (name) {
            case "plain" -> IvGenerator.Kind.PLAIN;
            case "plain64" -> IvGenerator.Kind.PLAIN64;
            case "essiv" -> IvGenerator.Kind.ESSIV;
            default -> null;
        };
    }

    private static int cipherKeyBytes(SectorCipher.Mode mode, int keyBytes) {
        return mode == SectorCipher.Mode.XTS ? keyBytes / 2 : keyBytes;
    }

    /**
     * The PBKDF2 and anti-forensic hash qemu-img's {@code hash-alg} option names (sha256 if null).
     *
     * @throws IllegalArgumentException naming a hash qemu-img does not know, in its words, or one that needs Bouncy
     *         Castle when it is absent
     */
    static LuksHash pbkdfHash(String name) {
        LuksHash hash = optionHash(name).orElseThrow(() -> doesNotAccept("hash-alg", name));
        if (!hash.available()) {
            throw new IllegalArgumentException(hash.missingBouncyCastle());
        }
        return hash;
    }

    /** The hash an option names, sha256 if null: in lower case only, as qemu-img takes it (headers may shout). */
    private static Optional<LuksHash> optionHash(String name) {
        return name == null ? Optional.of(LuksHash.SHA256)
                : LuksHash.named(name).filter(h -> h.luksName().equals(name));
    }

    private static IllegalArgumentException doesNotAccept(String option, String value) {
        return new IllegalArgumentException("Parameter '" + option + "' does not accept value '" + value + "'");
    }

    /** The header's cipher name ({@code serpent}). */
    String cipherName() {
        return algorithm.luksName();
    }

    /** The header's cipher mode field ({@code xts-plain64}, {@code cbc-essiv:sha256}). */
    String headerMode() {
        return modeName() + "-" + ivgenName() + (ivHash == null ? "" : ":" + ivHash.luksName());
    }

    /** qemu-img's {@code cipher-alg} ({@code aes-256}). */
    String algName() {
        return algorithm.qemuName(cipherKeyBytes(mode, keyBytes));
    }

    /** qemu-img's {@code cipher-mode} ({@code xts}). */
    String modeName() {
        return mode.luksName();
    }

    /** qemu-img's {@code ivgen-alg} ({@code plain64}). */
    String ivgenName() {
        return ivgen.name().toLowerCase(Locale.ROOT);
    }

    /** A cipher over 512-byte sectors with {@code key}. */
    SectorCipher cipher(byte[] key) {
        return cipher(key, SectorCipher.SECTOR);
    }

    /** A cipher over units of {@code unitBytes} (LUKS2's sector size) with {@code key}. */
    SectorCipher cipher(byte[] key, int unitBytes) {
        return SectorCipher.of(algorithm, mode, key, IvGenerator.of(ivgen, algorithm, ivHash, key), unitBytes);
    }

    private static UnsupportedFeatureException unsupported(String resource, String detail) {
        return new UnsupportedFeatureException(resource, Feature.ENCRYPTION, detail);
    }
}
