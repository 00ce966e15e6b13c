package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.luks.crypto.LuksHash;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The LUKS1 header (the first 592 bytes, big-endian; layout in {@code package-info}), parsed and checked against
 * the file it is in: every active key slot's material lies after the header, inside the file and before the
 * payload, and no two overlap.
 *
 * @param payloadSector where the encrypted data starts, in 512-byte sectors
 * @param uuid the UUID text (up to 39 characters)
 * @param slots the eight key slots
 */
record LuksHeader(LuksCipherSpec spec, LuksHash hash, long payloadSector, byte[] mkDigest, byte[] mkSalt,
        long mkIterations, String uuid, List<LuksKeySlot> slots) {
    static final int LENGTH = 592;
    static final byte[] MAGIC = {'L', 'U', 'K', 'S', (byte) 0xba, (byte) 0xbe};
    static final int VERSION_OFFSET = 6;
    static final int CIPHER_NAME_OFFSET = 8;
    static final int CIPHER_MODE_OFFSET = 40;
    static final int HASH_SPEC_OFFSET = 72;
    static final int PAYLOAD_OFFSET = 104;
    static final int KEY_BYTES_OFFSET = 108;
    static final int MK_ITERATIONS_OFFSET = 164;
    static final int SLOTS_OFFSET = 208;
    static final int NAME_LENGTH = 32;
    static final int DIGEST_LENGTH = 20;
    static final int SALT_LENGTH = 32;
    static final int UUID_LENGTH = 40;
    static final int SLOT_COUNT = 8;
    /** The anti-forensic stripes of every key slot, as LUKS1, cryptsetup and QEMU have them. */
    static final int STRIPES = 4000;
    static final int SECTOR = 512;

    /** Whether {@code head} starts with the LUKS magic. */
    static boolean hasMagic(ByteBuffer head) {
        if (head.remaining() < MAGIC.length) {
            return false;
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (head.get(head.position() + i) != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * Parses the header in {@code b} (at least {@link #LENGTH} bytes from its position) of a file of
     * {@code fileSize} bytes.
     *
     * @throws CorruptImageException if the header is not LUKS or contradicts itself or the file
     * @throws UnsupportedFeatureException for LUKS2, or a cipher, mode or hash imago does not have (named)
     */
    static LuksHeader parse(String resource, ByteBuffer b, long fileSize)
            throws CorruptImageException, UnsupportedFeatureException {
        if (b.remaining() < LENGTH) {
            throw new CorruptImageException(resource, 0, "truncated LUKS header: " + b.remaining()
                    + " bytes, a LUKS1 header has " + LENGTH);
        }
        if (!hasMagic(b)) {
            throw new CorruptImageException(resource, 0, "Volume is not in LUKS format");
        }
        int base = b.position();
        int version = Short.toUnsignedInt(b.getShort(base + VERSION_OFFSET));
        if (version != 1) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "LUKS version " + version
                    + (version == 2 ? " (LUKS2) is not supported, only LUKS1" : " is not supported"));
        }
        String cipherName = text(resource, b, base + CIPHER_NAME_OFFSET, NAME_LENGTH, "cipher name");
        String cipherMode = text(resource, b, base + CIPHER_MODE_OFFSET, NAME_LENGTH, "cipher mode");
        String hashSpec = text(resource, b, base + HASH_SPEC_OFFSET, NAME_LENGTH, "hash spec");
        long payload = Integer.toUnsignedLong(b.getInt(base + PAYLOAD_OFFSET));
        long keyBytes = Integer.toUnsignedLong(b.getInt(base + KEY_BYTES_OFFSET));
        LuksHash hash = LuksHash.named(hashSpec).orElseThrow(() -> new UnsupportedFeatureException(resource,
                Feature.ENCRYPTION, "hash '" + hashSpec + "' is not supported (only " + LuksHash.names() + ")"));
        if (!hash.available()) {
            throw new UnsupportedFeatureException(resource, Feature.ENCRYPTION, hash.missingBouncyCastle());
        }
        LuksCipherSpec spec = LuksCipherSpec.fromHeader(resource, cipherName, cipherMode, keyBytes);
        byte[] digest = bytes(b, base + 112, DIGEST_LENGTH);
        byte[] salt = bytes(b, base + 132, SALT_LENGTH);
        long mkIterations = Integer.toUnsignedLong(b.getInt(base + MK_ITERATIONS_OFFSET));
        if (mkIterations == 0) {
            throw new CorruptImageException(resource, MK_ITERATIONS_OFFSET, "master key digest has 0 iterations");
        }
        String uuid = text(resource, b, base + 168, UUID_LENGTH, "UUID");
        if (payload * SECTOR < LENGTH) {
            // a detached header (payload 0) would put guest data over the header: imago has no detached headers
            throw new CorruptImageException(resource, PAYLOAD_OFFSET, "payload offset " + payload * SECTOR
                    + " overlaps the header");
        }
        if (payload * SECTOR > fileSize) {
            throw new CorruptImageException(resource, PAYLOAD_OFFSET, "payload offset " + payload * SECTOR
                    + " is past the end of the file (" + fileSize + " bytes)");
        }
        List<LuksKeySlot> slots = new ArrayList<>(SLOT_COUNT);
        for (int i = 0; i < SLOT_COUNT; i++) {
            int at = base + SLOTS_OFFSET + i * LuksKeySlot.LENGTH;
            int state = b.getInt(at);
            if (state != LuksKeySlot.ENABLED && state != LuksKeySlot.DISABLED) {
                throw new CorruptImageException(resource, SLOTS_OFFSET + i * LuksKeySlot.LENGTH, "key slot " + i
                        + " is neither enabled nor disabled (state 0x" + Integer.toHexString(state) + ")");
            }
            LuksKeySlot slot = LuksKeySlot.parse(b.duplicate().position(at + 4), state);
            if (slot.active()) {
                checkSlot(resource, i, slot, spec.keyBytes(), payload, fileSize);
                for (int j = 0; j < i; j++) {
                    LuksKeySlot other = slots.get(j);
                    if (other.active() && overlap(slot, other, spec.keyBytes())) {
                        throw new CorruptImageException(resource, SLOTS_OFFSET + i * LuksKeySlot.LENGTH,
                                "key slots " + j + " and " + i + " have overlapping key material");
                    }
                }
            }
            slots.add(slot);
        }
        return new LuksHeader(spec, hash, payload, digest, salt, mkIterations, uuid, List.copyOf(slots));
    }

    private static void checkSlot(String resource, int i, LuksKeySlot slot, int keyBytes, long payload,
            long fileSize) throws CorruptImageException {
        long at = SLOTS_OFFSET + (long) i * LuksKeySlot.LENGTH;
        if (slot.stripes() != STRIPES) {
            throw new CorruptImageException(resource, at, "key slot " + i + " has " + slot.stripes()
                    + " stripes, LUKS1 has " + STRIPES);
        }
        if (slot.iterations() == 0) {
            throw new CorruptImageException(resource, at, "key slot " + i + " has 0 PBKDF2 iterations");
        }
        long start = slot.materialSector() * SECTOR;
        long end = start + materialSectors(keyBytes) * SECTOR;
        if (start < LENGTH) {
            throw new CorruptImageException(resource, at, "key slot " + i + "'s key material at " + start
                    + " overlaps the header");
        }
        if (end > payload * SECTOR) {
            throw new CorruptImageException(resource, at, "key slot " + i + "'s key material (" + start + " to "
                    + end + ") overlaps the payload at " + payload * SECTOR);
        }
        if (end > fileSize) {
            throw new CorruptImageException(resource, at, "key slot " + i + "'s key material (" + start + " to "
                    + end + ") is past the end of the file (" + fileSize + " bytes)");
        }
    }

    private static boolean overlap(LuksKeySlot a, LuksKeySlot b, int keyBytes) {
        long n = materialSectors(keyBytes);
        return a.materialSector() < b.materialSector() + n && b.materialSector() < a.materialSector() + n;
    }

    /** The sectors one slot's key material takes. */
    static long materialSectors(int keyBytes) {
        return ((long) keyBytes * STRIPES + SECTOR - 1) / SECTOR;
    }

    private static String text(String resource, ByteBuffer b, int at, int length, String what)
            throws CorruptImageException {
        byte[] raw = bytes(b, at, length);
        int n = 0;
        while (n < length && raw[n] != 0) {
            if (raw[n] < 0x20 || raw[n] > 0x7e) {
                throw new CorruptImageException(resource, at - b.position(), "the " + what
                        + " holds a byte that is not printable ASCII");
            }
            n++;
        }
        if (n == length && what.equals("UUID")) {
            throw new CorruptImageException(resource, at - b.position(), "the UUID is not NUL-terminated");
        }
        return new String(raw, 0, n, StandardCharsets.US_ASCII);
    }

    private static byte[] bytes(ByteBuffer b, int at, int length) {
        byte[] out = new byte[length];
        b.get(at, out);
        return out;
    }

    /** Writes the header ({@link #LENGTH} bytes) at the buffer's position. */
    void writeTo(ByteBuffer b) {
        int base = b.position();
        b.put(MAGIC).putShort((short) 1);
        putText(b, base + CIPHER_NAME_OFFSET, spec.cipherName(), NAME_LENGTH);
        putText(b, base + CIPHER_MODE_OFFSET, spec.headerMode(), NAME_LENGTH);
        putText(b, base + HASH_SPEC_OFFSET, hash.luksName(), NAME_LENGTH);
        b.position(base + PAYLOAD_OFFSET);
        b.putInt((int) payloadSector).putInt(spec.keyBytes()).put(mkDigest).put(mkSalt).putInt((int) mkIterations);
        putText(b, base + 168, uuid, UUID_LENGTH);
        b.position(base + SLOTS_OFFSET);
        for (LuksKeySlot s : slots) {
            s.writeTo(b);
        }
    }

    private static void putText(ByteBuffer b, int at, String text, int length) {
        byte[] raw = Arrays.copyOf(text.getBytes(StandardCharsets.US_ASCII), length);
        b.put(at, raw);
    }

    /** This header with slot {@code i} replaced. */
    LuksHeader withSlot(int i, LuksKeySlot slot) {
        List<LuksKeySlot> s = new ArrayList<>(slots);
        s.set(i, slot);
        return new LuksHeader(spec, hash, payloadSector, mkDigest, mkSalt, mkIterations, uuid, List.copyOf(s));
    }

    @Override
    public String toString() {
        return "LuksHeader[" + spec.algName() + "-" + spec.headerMode() + ", " + hash.luksName() + ", payload sector "
                + payloadSector + ", uuid " + uuid + "]";
    }
}
