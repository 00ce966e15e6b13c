package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.luks.crypto.IvGenerator;
import imago.luks.crypto.LuksHash;
import imago.luks.crypto.SectorCipher;
import java.util.Locale;

/**
 * The payload's cipher: AES in XTS or CBC mode, its IV generator (with ESSIV's hash) and key length, as the header
 * spells it ({@code aes}, {@code xts-plain64}, {@code cbc-essiv:sha256}) and as qemu-img's options and
 * {@code info} name it ({@code aes-256}, {@code xts}, {@code essiv}, {@code sha256}).
 *
 * @param ivHash ESSIV's hash, {@code null} for the other generators
 */
record LuksCipherSpec(SectorCipher.Mode mode, IvGenerator.Kind ivgen, LuksHash ivHash, int keyBytes) {

    /**
     * The spec a header names.
     *
     * @throws UnsupportedFeatureException naming a cipher, mode, IV generator or hash imago does not have
     * @throws CorruptImageException if the key length does not fit the cipher
     */
    static LuksCipherSpec fromHeader(String resource, String cipherName, String cipherMode, long keyBytes)
            throws UnsupportedFeatureException, CorruptImageException {
        if (!cipherName.equals("aes")) {
            throw unsupported(resource, "cipher '" + cipherName + "' is not supported (only aes)");
        }
        int dash = cipherMode.indexOf('-');
        SectorCipher.Mode mode = switch (dash < 0 ? cipherMode : cipherMode.substring(0, dash)) {
            case "xts" -> SectorCipher.Mode.XTS;
            case "cbc" -> SectorCipher.Mode.CBC;
            default -> throw unsupported(resource, "cipher mode '" + cipherMode + "' is not supported (only xts "
                    + "and cbc)");
        };
        String iv = dash < 0 ? "" : cipherMode.substring(dash + 1);
        int colon = iv.indexOf(':');
        String ivName = colon < 0 ? iv : iv.substring(0, colon);
        IvGenerator.Kind kind = switch (ivName) {
            case "plain" -> IvGenerator.Kind.PLAIN;
            case "plain64" -> IvGenerator.Kind.PLAIN64;
            case "essiv" -> IvGenerator.Kind.ESSIV;
            default -> throw unsupported(resource, "IV generator '" + iv + "' of cipher mode '" + cipherMode
                    + "' is not supported (only plain, plain64 and essiv)");
        };
        LuksHash hash = null;
        if (kind == IvGenerator.Kind.ESSIV) {
            String hashName = colon < 0 ? "" : iv.substring(colon + 1);
            hash = LuksHash.named(hashName).orElseThrow(() -> unsupported(resource, "ESSIV hash '" + hashName
                    + "' of cipher mode '" + cipherMode + "' is not supported"));
            if (hash.length() != 16 && hash.length() != 24 && hash.length() != 32) {
                throw unsupported(resource, "ESSIV hash '" + hashName + "' gives no AES key length");
            }
        } else if (colon >= 0) {
            throw unsupported(resource, "cipher mode '" + cipherMode + "' names a hash for IV generator " + ivName);
        }
        if (keyBytes > 64 || !SectorCipher.validKeyLength(mode, (int) keyBytes)) {
            throw new CorruptImageException(resource, LuksHeader.KEY_BYTES_OFFSET, "key length " + keyBytes
                    + " does not fit aes in " + mode.name().toLowerCase(Locale.ROOT) + " mode");
        }
        return new LuksCipherSpec(mode, kind, hash, (int) keyBytes);
    }

    /**
     * The spec qemu-img's create options ask for ({@code cipher-alg}, {@code cipher-mode}, {@code ivgen-alg},
     * {@code ivgen-hash-alg}), with its defaults: aes-256, xts, plain64, sha256.
     *
     * @throws IllegalArgumentException naming a value imago does not have
     */
    static LuksCipherSpec fromOptions(String alg, String mode, String ivgen, String ivHash) {
        int aesBytes = switch (alg == null ? "aes-256" : alg) {
            case "aes-128" -> 16;
            case "aes-192" -> 24;
            case "aes-256" -> 32;
            default -> throw new IllegalArgumentException("Invalid parameter '" + alg + "' for cipher-alg "
                    + "(only aes-128, aes-192 and aes-256)");
        };
        SectorCipher.Mode m = switch (mode == null ? "xts" : mode) {
            case "xts" -> SectorCipher.Mode.XTS;
            case "cbc" -> SectorCipher.Mode.CBC;
            default -> throw new IllegalArgumentException("Invalid parameter '" + mode + "' for cipher-mode "
                    + "(only xts and cbc)");
        };
        IvGenerator.Kind kind = switch (ivgen == null ? "plain64" : ivgen) {
            case "plain" -> IvGenerator.Kind.PLAIN;
            case "plain64" -> IvGenerator.Kind.PLAIN64;
            case "essiv" -> IvGenerator.Kind.ESSIV;
            default -> throw new IllegalArgumentException("Invalid parameter '" + ivgen + "' for ivgen-alg "
                    + "(only plain, plain64 and essiv)");
        };
        LuksHash hash = null;
        if (kind == IvGenerator.Kind.ESSIV) {
            String name = ivHash == null ? "sha256" : ivHash;
            hash = LuksHash.named(name).filter(h -> h.length() == 16 || h.length() == 24 || h.length() == 32)
                    .orElseThrow(() -> new IllegalArgumentException("Invalid parameter '" + name
                            + "' for ivgen-hash-alg (an ESSIV hash must give an AES key: sha256)"));
        }
        return new LuksCipherSpec(m, kind, hash, m == SectorCipher.Mode.XTS ? 2 * aesBytes : aesBytes);
    }

    /** The header's cipher mode field ({@code xts-plain64}, {@code cbc-essiv:sha256}). */
    String headerMode() {
        return modeName() + "-" + ivgenName() + (ivHash == null ? "" : ":" + ivHash.luksName());
    }

    /** qemu-img's {@code cipher-alg} ({@code aes-256}). */
    String algName() {
        return "aes-" + (mode == SectorCipher.Mode.XTS ? keyBytes / 2 : keyBytes) * 8;
    }

    /** qemu-img's {@code cipher-mode} ({@code xts}). */
    String modeName() {
        return mode.name().toLowerCase(Locale.ROOT);
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
        return SectorCipher.of(mode, key, IvGenerator.of(ivgen, ivHash, key), unitBytes);
    }

    private static UnsupportedFeatureException unsupported(String resource, String detail) {
        return new UnsupportedFeatureException(resource, Feature.ENCRYPTION, detail);
    }
}
