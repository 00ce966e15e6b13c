package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Optional;

/**
 * An opened encryption header ({@link EncryptionFormat#open}): what {@code info} shows of it and, once unlocked,
 * the cipher over fixed-size sectors that the embedding driver applies to its data, each sector's number being its
 * IV. Thread-safe: many threads may encrypt and decrypt at once. {@link #close()} wipes the key.
 */
public interface SectorEncryption extends AutoCloseable {

    /** The encryption unit in bytes (512 for LUKS). */
    int sectorSize();

    /** Whether a key is present: without one, {@link #encrypt} and {@link #decrypt} refuse. */
    boolean unlocked();

    /**
     * Encrypts {@code len} bytes (whole sectors) of {@code buf} from {@code off} in place, the first being sector
     * {@code firstSector}.
     *
     * @throws IllegalStateException if not {@link #unlocked()}
     */
    void encrypt(byte[] buf, int off, int len, long firstSector);

    /** Decrypts in place, as {@link #encrypt} encrypts. */
    void decrypt(byte[] buf, int off, int len, long firstSector);

    /**
     * Decrypts the remaining bytes of {@code buf} (whole sectors) in place, the first being sector
     * {@code firstSector}; its position does not move. {@code buf} may be direct: an embedding driver reads the
     * stored sectors into its caller's buffer and decrypts them there.
     *
     * @implSpec The default decrypts a heap buffer's array in place and copies a direct buffer's bytes through an
     *           array of their length.
     * @throws IllegalStateException if not {@link #unlocked()}
     */
    default void decrypt(ByteBuffer buf, long firstSector) {
        if (buf.hasArray()) {
            decrypt(buf.array(), buf.arrayOffset() + buf.position(), buf.remaining(), firstSector);
            return;
        }
        byte[] bytes = new byte[buf.remaining()];
        buf.get(buf.position(), bytes);
        decrypt(bytes, 0, bytes.length, firstSector);
        buf.put(buf.position(), bytes);
    }

    /**
     * What {@code info} shows of the header, by QEMU's field names ({@code format}, {@code cipher-alg}, ...,
     * {@code slots}); never key material.
     */
    Map<String, Object> info();

    /**
     * The key-slot editor of this header ({@code qemu-img amend -o state=...,keyslot=...}), if the format has one
     * and the header is unlocked.
     *
     * @implSpec The default has none.
     */
    default Optional<KeySlotEditor> keySlots() {
        return Optional.empty();
    }

    /** Adds and removes passphrases in a header's key slots, as {@code qemu-img amend} does. */
    interface KeySlotEditor {
        /**
         * Applies QEMU's amend options for key slots ({@code state}, {@code keyslot}, {@code new-secret},
         * {@code old-secret}, {@code iter-time}), refusing what QEMU refuses with its words; crash-safe.
         *
         * @param secrets the passphrases by id, looked up by {@code new-secret} and {@code old-secret}
         * @param force whether the user insisted ({@code --force}): QEMU lets a forced amend erase the last slot
         * @throws IllegalArgumentException for an option it refuses
         * @throws IOException if the header cannot be written
         */
        void amend(Map<String, String> options, imago.api.Secrets secrets, boolean force) throws IOException;
    }

    /** Wipes the key. */
    @Override
    void close();
}
