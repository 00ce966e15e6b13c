package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import imago.luks.crypto.LuksHash;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * A LUKS2 header: two copies (primary at 0, secondary right after it), each a 4 KiB big-endian binary header
 * followed by a JSON metadata area, the pair {@code hdr_size} bytes long and checksummed together (the checksum
 * field zeroed). The copy with the valid checksum and the higher {@code seqid} wins, as cryptsetup has it; two
 * valid copies with one seqid must agree. The layout is in {@code package-info}.
 *
 * @param hdrSize the size of one copy (binary header and JSON area)
 * @param seqid the winning copy's sequence number
 * @param damaged which copy failed its checks ({@code null} if both are good), for {@code info}
 * @param volumeKeyBytes the volume key's length (the key slots' {@code key_size})
 * @param segmentCipher the data segment's cipher for that key length
 * @param onDisk what rewriting the header needs of the copies as they are
 */
record Luks2Header(long hdrSize, long seqid, String label, String subsystem, String uuid, String checksumAlg,
        String damaged, Luks2Metadata metadata, int volumeKeyBytes, LuksCipherSpec segmentCipher, OnDisk onDisk) {
    static final int BINARY_LENGTH = 4096;
    static final byte[] MAGIC_SECONDARY = {'S', 'K', 'U', 'L', (byte) 0xba, (byte) 0xbe};
    static final int HDR_SIZE_OFFSET = 8;
    static final int SEQID_OFFSET = 16;
    static final int LABEL_OFFSET = 24;
    static final int LABEL_LENGTH = 48;
    static final int CSUM_ALG_OFFSET = 72;
    static final int SALT_OFFSET = 104;
    static final int SALT_LENGTH = 64;
    static final int UUID_OFFSET = 168;
    static final int SUBSYSTEM_OFFSET = 208;
    static final int HDR_OFFSET_OFFSET = 256;
    static final int CSUM_OFFSET = 448;
    static final int CSUM_LENGTH = 64;
    /** The sizes a copy may have: 16 KiB to 4 MiB, powers of two. */
    static final long MIN_HDR_SIZE = 16 * 1024;
    static final long MAX_HDR_SIZE = 4 * 1024 * 1024;

    /**
     * The copies as read, for a rewrite ({@link Luks2Commit}): the winner's JSON text, whether the secondary won
     * (then the primary is the one to overwrite first), and each copy's salt, {@code null} for a damaged copy
     * (which gets a new one, as cryptsetup does when it recovers a copy).
     */
    record OnDisk(String json, boolean secondaryWon, byte[] primarySalt, byte[] secondarySalt) {
    }

    /** One copy's fields, or why it is unusable. */
    private record Copy(long hdrSize, long seqid, String label, String subsystem, String uuid, String checksumAlg,
            String json, byte[] salt, ImageException failure) {
        static Copy failed(ImageException e) {
            return new Copy(0, 0, null, null, null, null, null, null, e);
        }
    }

    /**
     * Reads and checks both copies in {@code storage} and the metadata of the winning one.
     *
     * @throws CorruptImageException if no copy is valid, the valid copies disagree, or the metadata contradicts
     *     itself or the file (areas past its end, overlapping the header or the data)
     * @throws UnsupportedFeatureException for a LUKS2 feature imago does not implement (named)
     */
    static Luks2Header read(Storage storage) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        Copy primary = copy(storage, 0, fileSize, false);
        long secondaryAt = primary.failure() == null ? primary.hdrSize() : findSecondary(storage, fileSize);
        Copy secondary = secondaryAt < 0 ? Copy.failed(new CorruptImageException(resource, MIN_HDR_SIZE,
                "no LUKS2 secondary header found")) : copy(storage, secondaryAt, fileSize, true);
        Copy winner;
        String damaged = null;
        if (primary.failure() == null && secondary.failure() == null) {
            if (primary.seqid() == secondary.seqid() && !primary.json().equals(secondary.json())) {
                throw new CorruptImageException(resource, secondaryAt, "the two LUKS2 header copies have the same "
                        + "seqid " + primary.seqid() + " but different metadata");
            }
            winner = Long.compareUnsigned(secondary.seqid(), primary.seqid()) > 0 ? secondary : primary;
        } else if (primary.failure() == null) {
            winner = primary;
            damaged = "secondary: " + secondary.failure().detail();
        } else if (secondary.failure() == null) {
            winner = secondary;
            damaged = "primary: " + primary.failure().detail();
        } else {
            ImageException e = primary.failure();
            throw new CorruptImageException(resource, e.offset().orElse(0), e.detail() + " (and the secondary "
                    + "copy: " + secondary.failure().detail() + ")", e);
        }
        long jsonAt = (winner == primary ? 0 : secondaryAt) + BINARY_LENGTH;
        Object json;
        try {
            json = Luks2Json.parse(winner.json());
        } catch (Luks2Json.JsonException e) {
            throw new CorruptImageException(resource, jsonAt, "LUKS2 metadata is not valid JSON: " + e.getMessage(),
                    e);
        }
        Luks2Metadata m = Luks2Metadata.read(resource, jsonAt, json);
        if (m.jsonSize() != winner.hdrSize() - BINARY_LENGTH) {
            throw new CorruptImageException(resource, jsonAt, "LUKS2 metadata config.json_size " + m.jsonSize()
                    + " does not match the header size " + winner.hdrSize());
        }
        int keyBytes = checkLayout(resource, jsonAt, m, winner.hdrSize(), fileSize);
        LuksCipherSpec cipher = Luks2Metadata.segmentCipher(resource, jsonAt, m.segment(), keyBytes);
        OnDisk onDisk = new OnDisk(winner.json(), winner == secondary, primary.salt(), secondary.salt());
        return new Luks2Header(winner.hdrSize(), winner.seqid(), winner.label(), winner.subsystem(), winner.uuid(),
                winner.checksumAlg(), damaged, m, keyBytes, cipher, onDisk);
    }

    /**
     * Checks the areas against each other and the file: key-slot areas inside the key-slot area, apart from each
     * other and inside the file, one volume-key length, the data segment after the key-slot area and inside the
     * file. Returns the volume key's length.
     */
    static int checkLayout(String resource, long at, Luks2Metadata m, long hdrSize, long fileSize)
            throws CorruptImageException {
        long areasStart = 2 * hdrSize;
        long areasEnd = areasStart + m.keyslotsSize();
        if (areasEnd < areasStart) {
            throw new CorruptImageException(resource, at, "LUKS2 config.keyslots_size " + m.keyslotsSize()
                    + " is too large");
        }
        int keyBytes = -1;
        for (Luks2Metadata.Keyslot k : m.keyslots()) {
            long end = k.areaOffset() + k.areaSize();
            if (k.areaOffset() < areasStart || end < k.areaOffset() || end > areasEnd) {
                throw new CorruptImageException(resource, at, "LUKS2 key slot " + k.id() + " area [" + k.areaOffset()
                        + ", +" + k.areaSize() + ") lies outside the key-slot area [" + areasStart + ", "
                        + areasEnd + ")");
            }
            if (k.areaOffset() + k.materialLength() > fileSize) {
                throw new CorruptImageException(resource, at, "LUKS2 key slot " + k.id() + " area at "
                        + k.areaOffset() + " ends past the end of the file (" + fileSize + " bytes)");
            }
            if (keyBytes >= 0 && keyBytes != k.keySize()) {
                throw new CorruptImageException(resource, at, "LUKS2 key slots hold volume keys of different "
                        + "lengths (" + keyBytes + " and " + k.keySize() + " bytes)");
            }
            keyBytes = k.keySize();
        }
        checkApart(resource, at, m.keyslots());
        Luks2Metadata.Segment s = m.segment();
        if (s.offset() < areasEnd) {
            throw new CorruptImageException(resource, at, "LUKS2 data segment at " + s.offset()
                    + " overlaps the header and key-slot areas (which end at " + areasEnd + ")");
        }
        if (s.offset() > fileSize) {
            throw new CorruptImageException(resource, at, "LUKS2 data segment at " + s.offset()
                    + " starts past the end of the file (" + fileSize + " bytes)");
        }
        // without key slots the header can still be shown: assume the segment cipher's longest key
        return keyBytes < 0 ? 64 : keyBytes;
    }

    /**
     * Refuses key-slot areas that overlap (as cryptsetup does): erasing one slot would wipe another's material.
     * Sorted by offset, each area must end before the next begins.
     */
    private static void checkApart(String resource, long at, List<Luks2Metadata.Keyslot> keyslots)
            throws CorruptImageException {
        List<Luks2Metadata.Keyslot> byOffset = new ArrayList<>(keyslots);
        byOffset.sort(Comparator.comparingLong(Luks2Metadata.Keyslot::areaOffset));
        for (int i = 1; i < byOffset.size(); i++) {
            Luks2Metadata.Keyslot a = byOffset.get(i - 1);
            Luks2Metadata.Keyslot b = byOffset.get(i);
            if (a.areaOffset() + a.areaSize() > b.areaOffset()) {
                throw new CorruptImageException(resource, at, "LUKS2 key slot " + b.id() + " area [" + b.areaOffset()
                        + ", +" + b.areaSize() + ") overlaps key slot " + a.id() + "'s [" + a.areaOffset() + ", +"
                        + a.areaSize() + ")");
            }
        }
    }

    /** Looks for the secondary copy at each size a primary could have had. */
    private static long findSecondary(Storage storage, long fileSize) throws IOException {
        for (long at = MIN_HDR_SIZE; at <= MAX_HDR_SIZE && at + BINARY_LENGTH <= fileSize; at *= 2) {
            ByteBuffer b = ByteBuffer.allocate(MAGIC_SECONDARY.length);
            storage.read(b, at);
            if (Arrays.equals(b.array(), MAGIC_SECONDARY)) {
                return at;
            }
        }
        return -1;
    }

    private static Copy copy(Storage storage, long at, long fileSize, boolean secondary) throws IOException {
        String resource = storage.name();
        try {
            if (fileSize - at < BINARY_LENGTH) {
                throw new CorruptImageException(resource, at, "truncated LUKS2 header: " + Math.max(0, fileSize - at)
                        + " bytes, a binary header has " + BINARY_LENGTH);
            }
            ByteBuffer bin = ByteBuffer.allocate(BINARY_LENGTH);
            storage.read(bin, at);
            byte[] magic = Arrays.copyOf(bin.array(), 6);
            if (!Arrays.equals(magic, secondary ? MAGIC_SECONDARY : LuksHeader.MAGIC)) {
                throw new CorruptImageException(resource, at, "bad LUKS2 " + (secondary ? "secondary" : "primary")
                        + " header magic");
            }
            int version = Short.toUnsignedInt(bin.getShort(LuksHeader.VERSION_OFFSET));
            if (version != 2) {
                throw new CorruptImageException(resource, at + LuksHeader.VERSION_OFFSET, "LUKS2 header copy has "
                        + "version " + version);
            }
            long hdrSize = bin.getLong(HDR_SIZE_OFFSET);
            if (hdrSize < MIN_HDR_SIZE || hdrSize > MAX_HDR_SIZE || Long.bitCount(hdrSize) != 1) {
                throw new CorruptImageException(resource, at + HDR_SIZE_OFFSET, "LUKS2 header size " + hdrSize
                        + " is not a power of two from 16 KiB to 4 MiB");
            }
            if (secondary && hdrSize != at) {
                // the secondary follows a primary of its own size: a rewrite puts it back at hdr_size
                throw new CorruptImageException(resource, at + HDR_SIZE_OFFSET, "LUKS2 secondary header at " + at
                        + " says the header size is " + hdrSize);
            }
            long hdrOffset = bin.getLong(HDR_OFFSET_OFFSET);
            if (hdrOffset != at) {
                throw new CorruptImageException(resource, at + HDR_OFFSET_OFFSET, "LUKS2 header copy at " + at
                        + " says it is at " + hdrOffset);
            }
            if (fileSize - at < hdrSize) {
                throw new CorruptImageException(resource, at, "truncated LUKS2 header: it has " + hdrSize
                        + " bytes, the file " + (fileSize - at) + " from " + at);
            }
            String alg = text(bin, CSUM_ALG_OFFSET, 32);
            LuksHash hash = LuksHash.named(alg).orElseThrow(() -> new CorruptImageException(resource,
                    at + CSUM_ALG_OFFSET, "LUKS2 checksum algorithm '" + alg + "' is not supported"));
            if (!hash.available()) {
                throw new CorruptImageException(resource, at + CSUM_ALG_OFFSET, "LUKS2 checksum algorithm: "
                        + hash.missingBouncyCastle());
            }
            byte[] whole = new byte[(int) hdrSize];
            storage.read(ByteBuffer.wrap(whole), at);
            byte[] stored = Arrays.copyOfRange(whole, CSUM_OFFSET, CSUM_OFFSET + hash.length());
            Arrays.fill(whole, CSUM_OFFSET, CSUM_OFFSET + CSUM_LENGTH, (byte) 0);
            if (!MessageDigest.isEqual(stored, hash.digest().digest(whole))) {
                throw new CorruptImageException(resource, at + CSUM_OFFSET, "LUKS2 " + (secondary ? "secondary"
                        : "primary") + " header checksum mismatch");
            }
            int end = BINARY_LENGTH;
            while (end < whole.length && whole[end] != 0) {
                end++;
            }
            String json;
            try {
                json = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(whole, BINARY_LENGTH, end - BINARY_LENGTH)).toString();
            } catch (CharacterCodingException e) {
                throw new CorruptImageException(resource, at + BINARY_LENGTH, "LUKS2 metadata is not UTF-8", e);
            }
            return new Copy(hdrSize, bin.getLong(SEQID_OFFSET), text(bin, LABEL_OFFSET, LABEL_LENGTH),
                    text(bin, SUBSYSTEM_OFFSET, LABEL_LENGTH), text(bin, UUID_OFFSET, LuksHeader.UUID_LENGTH), alg,
                    json, Arrays.copyOfRange(bin.array(), SALT_OFFSET, SALT_OFFSET + SALT_LENGTH), null);
        } catch (CorruptImageException e) {
            return Copy.failed(e);
        }
    }

    /**
     * A NUL-terminated text field: its bytes up to the first NUL, at most {@code length - 1} (the last byte is the
     * terminator, as cryptsetup reads it), as ISO-8859-1 so that any byte reads and writes back unchanged.
     */
    private static String text(ByteBuffer b, int offset, int length) {
        int n = 0;
        while (n < length - 1 && b.get(offset + n) != 0) {
            n++;
        }
        return new String(b.array(), offset, n, StandardCharsets.ISO_8859_1);
    }

    /**
     * One copy of a header with {@code json} as its metadata, ready to write at {@code at} (0 for the primary,
     * {@code hdrSize} for the secondary): {@code hdrSize} bytes with the SHA-256 checksum filled in.
     */
    static byte[] encode(long at, long hdrSize, long seqid, String label, String uuid, byte[] salt, String json) {
        return encode(at, hdrSize, seqid, label, "", uuid, LuksHash.SHA256, salt, json);
    }

    /**
     * One copy as {@link #encode(long, long, long, String, String, byte[], String)} makes it, with a subsystem and
     * the checksum computed with {@code checksum}.
     *
     * @throws IllegalArgumentException if the JSON does not fit the JSON area (with its terminating NUL)
     */
    static byte[] encode(long at, long hdrSize, long seqid, String label, String subsystem, String uuid,
            LuksHash checksum, byte[] salt, String json) {
        byte[] text = json.getBytes(StandardCharsets.UTF_8);
        if (text.length >= hdrSize - BINARY_LENGTH) {
            throw new IllegalArgumentException("LUKS2 metadata of " + text.length + " bytes does not fit a "
                    + hdrSize + "-byte header");
        }
        ByteBuffer b = ByteBuffer.allocate((int) hdrSize);
        b.put(at == 0 ? LuksHeader.MAGIC : MAGIC_SECONDARY);
        b.putShort(LuksHeader.VERSION_OFFSET, (short) 2);
        b.putLong(HDR_SIZE_OFFSET, hdrSize);
        b.putLong(SEQID_OFFSET, seqid);
        putText(b, LABEL_OFFSET, LABEL_LENGTH, label);
        putText(b, CSUM_ALG_OFFSET, 32, checksum.luksName());
        b.put(SALT_OFFSET, salt, 0, SALT_LENGTH);
        putText(b, UUID_OFFSET, LuksHeader.UUID_LENGTH, uuid);
        putText(b, SUBSYSTEM_OFFSET, LABEL_LENGTH, subsystem);
        b.putLong(HDR_OFFSET_OFFSET, at);
        b.put(BINARY_LENGTH, text);
        byte[] whole = b.array();
        byte[] sum = checksum.digest().digest(whole);
        System.arraycopy(sum, 0, whole, CSUM_OFFSET, sum.length);
        return whole;
    }

    private static void putText(ByteBuffer b, int offset, int length, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.ISO_8859_1);
        if (bytes.length >= length) {
            throw new IllegalArgumentException("'" + s + "' does not fit " + length + " bytes");
        }
        b.put(offset, bytes);
    }

    @Override
    public String toString() {
        return "LUKS2[" + uuid + ", seqid " + seqid + ", " + metadata.keyslots().size() + " key slots]";
    }
}
