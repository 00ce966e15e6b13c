package imago.luks.internal;

import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import imago.luks.crypto.AntiForensic;
import imago.luks.crypto.Pbkdf2;
import imago.luks.crypto.SectorCipher;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;

/**
 * The key slots' work: finding the master key a passphrase unlocks (PBKDF2, decrypting the slot's material, the
 * anti-forensic merge, the master-key digest check), and filling a slot for a new master key.
 *
 * <p>PBKDF2's iteration counts come from the header, so a hostile header could ask for days of work: each count is
 * checked against a limit first ({@link #DEFAULT_MAX_ITERATIONS}, raised by the open option
 * {@value #MAX_ITERATIONS_OPTION} or the system property {@value #MAX_ITERATIONS_PROPERTY}).
 */
final class LuksKeys {
    /** The open option that overrides the iteration limit. */
    static final String MAX_ITERATIONS_OPTION = "pbkdf-max-iterations";
    /** The system property that overrides the iteration limit. */
    static final String MAX_ITERATIONS_PROPERTY = "imago.luks.maxPbkdfIterations";
    /**
     * The default limit on one PBKDF2 run, 2^25 (33.5 million). qemu-img and cryptsetup calibrate a slot to 2 s of
     * the creating machine's CPU; here (measured in CPU time, JDK 25) HMAC-SHA1 runs 4.8 million iterations a
     * second, SHA-256 4.6 million and SHA-512 1.25 million, so a legitimate SHA-256 slot has about 9 million.
     * The limit leaves room for a machine three to four times faster, and bounds one slot at about 7 s of
     * SHA-256 (27 s of SHA-512) here, where a hostile 2^32 would take 15 minutes.
     */
    static final long DEFAULT_MAX_ITERATIONS = 1L << 25;

    private LuksKeys() {
    }

    /** The iteration limit for an open with {@code options}. */
    static long maxIterations(String resource, Map<String, String> options) {
        String v = options.getOrDefault(MAX_ITERATIONS_OPTION, System.getProperty(MAX_ITERATIONS_PROPERTY));
        if (v == null) {
            return DEFAULT_MAX_ITERATIONS;
        }
        try {
            long n = Long.parseLong(v);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException(resource + ": " + MAX_ITERATIONS_OPTION + " must be a positive number, "
                + "not '" + v + "'");
    }

    /**
     * The master key {@code passphrase} unlocks, trying the active slots in order.
     *
     * @throws ImageLimitException if the digest or a slot tried asks for more iterations than {@code maxIterations}
     * @throws ImageException if no slot takes the passphrase
     */
    static byte[] unlock(String resource, Storage storage, LuksHeader h, byte[] passphrase, long maxIterations)
            throws IOException {
        checkIterations(resource, "the master key digest", h.mkIterations(), LuksHeader.MK_ITERATIONS_OFFSET,
                maxIterations);
        int keyBytes = h.spec().keyBytes();
        for (int i = 0; i < LuksHeader.SLOT_COUNT; i++) {
            LuksKeySlot slot = h.slots().get(i);
            if (!slot.active()) {
                continue;
            }
            checkIterations(resource, "key slot " + i, slot.iterations(),
                    LuksHeader.SLOTS_OFFSET + (long) i * LuksKeySlot.LENGTH, maxIterations);
            byte[] material = new byte[(int) (LuksHeader.materialSectors(keyBytes) * LuksHeader.SECTOR)];
            storage.read(ByteBuffer.wrap(material), slot.materialSector() * LuksHeader.SECTOR);
            byte[] slotKey = Pbkdf2.derive(h.hash(), passphrase, slot.salt(), slot.iterations(), keyBytes);
            try {
                h.spec().cipher(slotKey).decrypt(material, 0, material.length, 0);
            } finally {
                Arrays.fill(slotKey, (byte) 0);
            }
            byte[] key = AntiForensic.merge(material, keyBytes, (int) slot.stripes(), h.hash());
            Arrays.fill(material, (byte) 0);
            if (matches(h, key)) {
                return key;
            }
            Arrays.fill(key, (byte) 0);
        }
        throw new ImageException(resource, "Invalid password, cannot unlock any keyslot");
    }

    /** Whether {@code key}'s PBKDF2 digest is the header's. */
    static boolean matches(LuksHeader h, byte[] key) {
        byte[] digest = Pbkdf2.derive(h.hash(), key, h.mkSalt(), h.mkIterations(), LuksHeader.DIGEST_LENGTH);
        return MessageDigest.isEqual(digest, h.mkDigest());
    }

    private static void checkIterations(String resource, String what, long iterations, long offset, long max)
            throws ImageLimitException {
        if (iterations > max) {
            throw new ImageLimitException(resource, offset, what + " asks for " + iterations + " PBKDF2 iterations, "
                    + "more than the limit of " + max + " (raise it with the open option " + MAX_ITERATIONS_OPTION
                    + "=N or -D" + MAX_ITERATIONS_PROPERTY + "=N)");
        }
    }

    /**
     * Fills {@code layout}'s place with {@code key} locked by {@code passphrase} ({@code iterations} of PBKDF2, a
     * fresh salt, material split and encrypted as LUKS1 does) and returns the active slot.
     */
    static LuksKeySlot lock(Storage storage, LuksHeader h, LuksKeySlot layout, byte[] key, byte[] passphrase,
            long iterations, SecureRandom random) throws IOException {
        byte[] salt = new byte[LuksHeader.SALT_LENGTH];
        random.nextBytes(salt);
        int keyBytes = h.spec().keyBytes();
        byte[] split = AntiForensic.split(key, LuksHeader.STRIPES, h.hash(), random);
        byte[] material = Arrays.copyOf(split, (int) (LuksHeader.materialSectors(keyBytes) * LuksHeader.SECTOR));
        Arrays.fill(split, (byte) 0);
        byte[] slotKey = Pbkdf2.derive(h.hash(), passphrase, salt, iterations, keyBytes);
        try {
            SectorCipher cipher = h.spec().cipher(slotKey);
            cipher.encrypt(material, 0, material.length, 0);
        } finally {
            Arrays.fill(slotKey, (byte) 0);
        }
        storage.write(ByteBuffer.wrap(material), layout.materialSector() * LuksHeader.SECTOR);
        return new LuksKeySlot(true, iterations, salt, layout.materialSector(), LuksHeader.STRIPES);
    }
}
