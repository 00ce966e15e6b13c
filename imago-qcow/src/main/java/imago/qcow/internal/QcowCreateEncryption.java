package imago.qcow.internal;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.CreateChecks;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * qcow's encryption create options ({@code encryption}, {@code encrypt.format}, {@code encrypt.key-secret}), read
 * as qemu-img 7.2 reads them, with its messages, up to the point where it would encrypt: imago writes no AES-CBC
 * image, so options that ask for one end in an {@link UnsupportedFeatureException}.
 */
final class QcowCreateEncryption {
    /** The options, as {@code qemu-img create -f qcow -o help} lists them. */
    static final List<String> OPTIONS = List.of("encryption", "encrypt.format", "encrypt.key-secret");

    private QcowCreateEncryption() {
    }

    /**
     * The check qemu-img makes before it creates the file: the alias and its option are not both given.
     *
     * @throws IllegalArgumentException if both are
     */
    static void checkAlias(CreateOptions options) {
        CreateChecks.encryptionFormat(options.formatOptions());
    }

    /**
     * The checks qemu-img makes after it created the file, in its order; returns normally when no encryption is
     * asked for.
     *
     * @throws IllegalArgumentException for a format other than {@code aes}, a missing format, key or secret
     * @throws UnsupportedFeatureException for AES-CBC encryption, which imago does not write
     */
    static void check(String resource, CreateOptions options) throws UnsupportedFeatureException {
        Map<String, String> o = options.formatOptions();
        String format = CreateChecks.encryptionFormat(o);
        String id = o.get("encrypt.key-secret");
        if (format == null) {
            if (id != null) {
                throw new IllegalArgumentException("Parameter 'encrypt.format' is missing");
            }
            return;
        }
        if (!format.equals("aes")) {
            throw new IllegalArgumentException("Parameter 'format' does not accept value '" + format + "'");
        }
        if (id == null) {
            throw new IllegalArgumentException("Parameter 'encrypt.key-secret' is required for cipher");
        }
        byte[] secret = options.secrets().get(id).orElseThrow(() -> new IllegalArgumentException(
                "No secret with id '" + id + "'"));
        Arrays.fill(secret, (byte) 0);
        throw new UnsupportedFeatureException(resource, Feature.ENCRYPTION, "AES-CBC encrypted qcow images",
                "Creating AES-CBC encrypted qcow images is not supported (QEMU deprecates them; use luks or qcow2 "
                        + "with encrypt.format=luks)");
    }
}
