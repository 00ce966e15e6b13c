package imago.api.spi;

import imago.api.Secrets;
import java.io.IOException;
import java.util.Map;
import java.util.Set;

/**
 * An encryption format that image formats embed (LUKS inside qcow2, QEMU's {@code encrypt.format=luks}): it
 * parses, unlocks and creates an encryption header kept in a region of the image, and hands out the
 * {@link SectorEncryption} the image's driver applies to its data clusters. Found with
 * {@link java.util.ServiceLoader} by the format drivers that embed one ({@code uses imago.api.spi.EncryptionFormat}),
 * so that a driver works without the encryption module as long as no image asks for it. Stateless; the constructor
 * does no work.
 */
public interface EncryptionFormat {

    /** The format's name as QEMU's {@code encrypt.format} spells it ({@code luks}). */
    String name();

    /**
     * The create options it takes, as QEMU names them after the {@code encrypt.} prefix ({@code key-secret},
     * {@code cipher-alg}, ...).
     */
    Set<String> createOptionNames();

    /**
     * The bytes a new header for {@code options} takes (the region the embedding image must reserve).
     *
     * @throws IllegalArgumentException if an option is unknown or invalid
     */
    long headerLength(Map<String, String> options);

    /**
     * Writes a new header for {@code options} (without the {@code encrypt.} prefix) into {@code header}, a region of
     * {@link #headerLength} bytes, with a new random master key locked by the passphrase in the secret that
     * {@code key-secret} names.
     *
     * @return the unlocked encryption, which the caller closes
     * @throws IllegalArgumentException if an option is unknown or invalid, or the secret is missing
     * @throws IOException if the header cannot be written
     */
    SectorEncryption create(Storage header, Map<String, String> options, Secrets secrets) throws IOException;

    /**
     * Parses the header in {@code header} (the whole region the image names) and, given a passphrase, unlocks it.
     *
     * @param passphrase the passphrase (the caller wipes it), or {@code null} to read the header only (for
     *        {@code info}): the result then encrypts nothing
     * @param options open options the format knows (limits such as {@code pbkdf-max-iterations}); others ignored
     * @throws imago.api.CorruptImageException if the header is damaged
     * @throws imago.api.ImageException if the passphrase unlocks no key slot
     * @throws IOException if the header cannot be read
     */
    SectorEncryption open(Storage header, byte[] passphrase, Map<String, String> options) throws IOException;
}
