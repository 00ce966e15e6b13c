package imago.luks.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.luks.crypto.Argon2;
import imago.luks.crypto.LuksHash;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The LUKS2 JSON metadata, as far as imago uses it: the key slots, the one data segment, the digests and the
 * config's area sizes, each checked for type and range as it is read (LUKS2 writes 64-bit offsets and sizes as
 * decimal strings, small counts as JSON numbers). Tokens are checked for shape and kept only as a count: imago
 * opens with a passphrase.
 *
 * @param keyslots the key slots, by id
 * @param segment the data segment (LUKS2 allows several only during reencryption, which imago refuses)
 * @param digests the volume-key digests
 * @param jsonSize the JSON area's size (config.json_size)
 * @param keyslotsSize the key-slot area's size (config.keyslots_size)
 * @param tokens how many tokens the header has
 */
record Luks2Metadata(List<Keyslot> keyslots, Segment segment, List<Digest> digests, long jsonSize,
        long keyslotsSize, int tokens) {
    /** The most key slots LUKS2 has (cryptsetup's limit). */
    static final int MAX_KEYSLOTS = 32;
    /** The most tokens LUKS2 has (cryptsetup's limit). */
    static final int MAX_TOKENS = 32;

    /** A key slot's key derivation function. */
    sealed interface Kdf {
        /** The salt, as the KDF's JSON has it in base64. */
        byte[] salt();

        /** This KDF as a key slot's {@code kdf} object. */
        Map<String, Object> toJson();

        /** PBKDF2 with {@code hash} and {@code iterations}. */
        record Pbkdf2(LuksHash hash, long iterations, byte[] salt) implements Kdf {
            @Override
            public Map<String, Object> toJson() {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("type", "pbkdf2");
                m.put("hash", hash.luksName());
                m.put("iterations", iterations);
                m.put("salt", Base64.getEncoder().encodeToString(salt));
                return m;
            }
        }

        /** Argon2i or Argon2id with time (passes), memory (KiB) and cpus (lanes). */
        record Argon2(imago.luks.crypto.Argon2.Type type, long time, long memory, long cpus, byte[] salt)
                implements Kdf {
            @Override
            public Map<String, Object> toJson() {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("type", type == imago.luks.crypto.Argon2.Type.ARGON2I ? "argon2i" : "argon2id");
                m.put("time", time);
                m.put("memory", memory);
                m.put("cpus", cpus);
                m.put("salt", Base64.getEncoder().encodeToString(salt));
                return m;
            }
        }
    }

    /**
     * A LUKS2 key slot of type {@code luks2}: the volume key ({@code keySize} bytes) split into {@code stripes}
     * anti-forensic stripes with {@code afHash}, encrypted with {@code areaCipher} under a key of
     * {@code areaCipher.keyBytes()} bytes derived by {@code kdf}, stored at {@code areaOffset}.
     *
     * @param priority 0 ignore (tried only when named), 1 normal, 2 preferred
     */
    record Keyslot(int id, int keySize, int priority, int stripes, LuksHash afHash, Kdf kdf, long areaOffset,
            long areaSize, String areaEncryption, LuksCipherSpec areaCipher) {
        /** The bytes of split key material the slot holds, rounded up to whole 512-byte sectors. */
        long materialLength() {
            long n = (long) keySize * stripes;
            return (n + LuksHeader.SECTOR - 1) / LuksHeader.SECTOR * LuksHeader.SECTOR;
        }

        /** This slot as LUKS2 JSON, members in cryptsetup's order ({@code priority} only if not normal). */
        Map<String, Object> toJson() {
            Map<String, Object> af = new LinkedHashMap<>();
            af.put("type", "luks1");
            af.put("stripes", (long) stripes);
            af.put("hash", afHash.luksName());
            Map<String, Object> area = new LinkedHashMap<>();
            area.put("type", "raw");
            area.put("offset", Long.toString(areaOffset));
            area.put("size", Long.toString(areaSize));
            area.put("encryption", areaEncryption);
            area.put("key_size", (long) areaCipher.keyBytes());
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("type", "luks2");
            m.put("key_size", (long) keySize);
            m.put("af", af);
            m.put("area", area);
            m.put("kdf", kdf.toJson());
            if (priority != 1) {
                m.put("priority", (long) priority);
            }
            return m;
        }
    }

    /**
     * The data segment of type {@code crypt}.
     *
     * @param size the segment's length in bytes, or -1 for {@code dynamic} (to the end of the device)
     * @param ivTweak added to each sector's number to make its IV
     * @param sectorSize the encryption unit, 512 to 4096 bytes
     */
    record Segment(long offset, long size, long ivTweak, String encryption, int sectorSize) {
    }

    /** A {@code pbkdf2} digest of the volume key, valid for {@code keyslots} and {@code segments}. */
    record Digest(int id, List<Integer> keyslots, List<Integer> segments, LuksHash hash, long iterations,
            byte[] salt, byte[] digest) {
    }

    /**
     * Reads {@code json} (the parsed metadata area of the header at {@code offset}).
     *
     * @throws CorruptImageException naming the field that is missing, mistyped or out of range
     * @throws UnsupportedFeatureException for what imago does not implement (reencryption, integrity, other
     *     key-slot or segment types, ciphers other than AES)
     */
    static Luks2Metadata read(String resource, long offset, Object json) throws CorruptImageException,
            UnsupportedFeatureException {
        Fields f = new Fields(resource, offset);
        Map<String, Object> root = f.object(json, "metadata");
        Map<String, Object> config = f.object(root.get("config"), "config");
        long jsonSize = f.u64(config.get("json_size"), "config.json_size");
        long keyslotsSize = f.u64(config.get("keyslots_size"), "config.keyslots_size");
        if (config.get("requirements") instanceof Map<?, ?> req && req.get("mandatory") instanceof List<?> l
                && !l.isEmpty()) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "LUKS2 requirements " + l
                    + " are not supported (a reencryption in progress, or a newer format)");
        }
        List<Keyslot> keyslots = new ArrayList<>();
        for (Map.Entry<String, Object> e : f.object(root.get("keyslots"), "keyslots").entrySet()) {
            keyslots.add(keyslot(f, f.id(e.getKey(), "keyslots", MAX_KEYSLOTS), e.getValue()));
        }
        keyslots.sort(Comparator.comparingInt(Keyslot::id));
        Map<String, Object> segments = f.object(root.get("segments"), "segments");
        if (segments.size() != 1) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "LUKS2 with "
                    + segments.size() + " data segments is not supported (only one: no reencryption in progress)");
        }
        Map.Entry<String, Object> only = segments.entrySet().iterator().next();
        f.id(only.getKey(), "segments", 1);
        Segment segment = segment(f, only.getValue());
        List<Digest> digests = new ArrayList<>();
        for (Map.Entry<String, Object> e : f.object(root.get("digests"), "digests").entrySet()) {
            digests.add(digest(f, f.id(e.getKey(), "digests", MAX_KEYSLOTS), e.getValue()));
        }
        Map<String, Object> tokens = f.object(root.get("tokens"), "tokens");
        for (Map.Entry<String, Object> e : tokens.entrySet()) {
            token(f, f.id(e.getKey(), "tokens", MAX_TOKENS), e.getValue());
        }
        return new Luks2Metadata(List.copyOf(keyslots), segment, List.copyOf(digests), jsonSize, keyslotsSize,
                tokens.size());
    }

    /**
     * Checks a token as cryptsetup does (an object with a {@code type} and the {@code keyslots} it unlocks): imago
     * unlocks with passphrases only, but keeps tokens across an amend and drops an erased slot from them.
     */
    private static void token(Fields f, int id, Object value) throws CorruptImageException {
        String p = "tokens." + id;
        Map<String, Object> m = f.object(value, p);
        f.string(m.get("type"), p + ".type");
        f.ids(m.get("keyslots"), p + ".keyslots");
    }

    private static Keyslot keyslot(Fields f, int id, Object value) throws CorruptImageException,
            UnsupportedFeatureException {
        String p = "keyslots." + id;
        Map<String, Object> m = f.object(value, p);
        String type = f.string(m.get("type"), p + ".type");
        if (!type.equals("luks2")) {
            throw f.unsupported("key slot " + id + " of type '" + type + "' is not supported (only luks2)");
        }
        // a key for CBC, ECB or CTR (16 to 32 bytes) or two for XTS (32 to 64): bounds the stripes' memory too
        int keySize = (int) f.range(m.get("key_size"), p + ".key_size", 16, 64);
        int priority = m.containsKey("priority") ? (int) f.range(m.get("priority"), p + ".priority", 0, 2) : 1;
        Map<String, Object> af = f.object(m.get("af"), p + ".af");
        if (!f.string(af.get("type"), p + ".af.type").equals("luks1")) {
            throw f.unsupported("key slot " + id + " anti-forensic type '" + af.get("type") + "' is not supported");
        }
        int stripes = (int) f.range(af.get("stripes"), p + ".af.stripes", 1, 65_536);
        LuksHash afHash = f.hash(af.get("hash"), p + ".af.hash");
        Map<String, Object> area = f.object(m.get("area"), p + ".area");
        if (!f.string(area.get("type"), p + ".area.type").equals("raw")) {
            throw f.unsupported("key slot " + id + " area type '" + area.get("type") + "' is not supported");
        }
        long areaOffset = f.u64(area.get("offset"), p + ".area.offset");
        long areaSize = f.u64(area.get("size"), p + ".area.size");
        String encryption = f.string(area.get("encryption"), p + ".area.encryption");
        long areaKeySize = f.range(area.get("key_size"), p + ".area.key_size", 1, 512);
        LuksCipherSpec areaCipher = f.cipher(encryption, areaKeySize, p + ".area.encryption");
        Map<String, Object> kdf = f.object(m.get("kdf"), p + ".kdf");
        String kdfType = f.string(kdf.get("type"), p + ".kdf.type");
        byte[] salt = f.base64(kdf.get("salt"), p + ".kdf.salt");
        if (kdfType.startsWith("argon2") && salt.length < 8) {
            throw f.corrupt(p + ".kdf.salt: " + salt.length + " bytes, Argon2 needs at least 8");
        }
        Kdf k = switch (kdfType) {
            case "pbkdf2" -> new Kdf.Pbkdf2(f.hash(kdf.get("hash"), p + ".kdf.hash"),
                    f.range(kdf.get("iterations"), p + ".kdf.iterations", 1, 0xffffffffL), salt);
            case "argon2i", "argon2id" -> new Kdf.Argon2(kdfType.equals("argon2i") ? Argon2.Type.ARGON2I
                    : Argon2.Type.ARGON2ID, f.range(kdf.get("time"), p + ".kdf.time", 1, Integer.MAX_VALUE),
                    f.range(kdf.get("memory"), p + ".kdf.memory", 8, Integer.MAX_VALUE),
                    f.range(kdf.get("cpus"), p + ".kdf.cpus", 1, 0xffffffL), salt);
            default -> throw f.unsupported("key slot " + id + " KDF '" + kdfType + "' is not supported (only "
                    + "pbkdf2, argon2i and argon2id)");
        };
        Keyslot slot = new Keyslot(id, keySize, priority, stripes, afHash, k, areaOffset, areaSize, encryption,
                areaCipher);
        if (slot.materialLength() > areaSize) {
            throw f.corrupt(p + ".area.size: " + areaSize + " bytes cannot hold " + stripes + " stripes of "
                    + keySize + " bytes");
        }
        return slot;
    }

    private static Segment segment(Fields f, Object value) throws CorruptImageException,
            UnsupportedFeatureException {
        String p = "segments.0";
        Map<String, Object> m = f.object(value, p);
        String type = f.string(m.get("type"), p + ".type");
        if (!type.equals("crypt")) {
            throw f.unsupported("data segment of type '" + type + "' is not supported (only crypt)");
        }
        if (m.containsKey("integrity")) {
            throw f.unsupported("data segment with integrity protection (dm-integrity) is not supported");
        }
        if (m.get("flags") instanceof List<?> flags && !flags.isEmpty()) {
            throw f.unsupported("data segment flags " + flags + " are not supported (a reencryption in progress)");
        }
        long offset = f.u64(m.get("offset"), p + ".offset");
        Object sizeValue = m.get("size");
        long size = "dynamic".equals(sizeValue) ? -1 : f.u64(sizeValue, p + ".size");
        long ivTweak = f.u64(m.get("iv_tweak"), p + ".iv_tweak");
        String encryption = f.string(m.get("encryption"), p + ".encryption");
        int sectorSize = (int) f.range(m.get("sector_size"), p + ".sector_size", 512, 4096);
        if (Integer.bitCount(sectorSize) != 1) {
            throw f.corrupt(p + ".sector_size: " + sectorSize + " is not a power of two");
        }
        if (offset % sectorSize != 0 || (size > 0 && size % sectorSize != 0)) {
            throw f.corrupt(p + ": offset " + offset + " or size " + size + " is not a multiple of the sector "
                    + "size " + sectorSize);
        }
        // the cipher's key is the volume key, whose length only the key slots tell: checked in Luks2Header
        return new Segment(offset, size, ivTweak, encryption, sectorSize);
    }

    private static Digest digest(Fields f, int id, Object value) throws CorruptImageException,
            UnsupportedFeatureException {
        String p = "digests." + id;
        Map<String, Object> m = f.object(value, p);
        String type = f.string(m.get("type"), p + ".type");
        if (!type.equals("pbkdf2")) {
            throw f.unsupported("digest of type '" + type + "' is not supported (only pbkdf2)");
        }
        List<Integer> slots = f.ids(m.get("keyslots"), p + ".keyslots");
        List<Integer> segments = f.ids(m.get("segments"), p + ".segments");
        LuksHash hash = f.hash(m.get("hash"), p + ".hash");
        long iterations = f.range(m.get("iterations"), p + ".iterations", 1, 0xffffffffL);
        byte[] salt = f.base64(m.get("salt"), p + ".salt");
        byte[] digest = f.base64(m.get("digest"), p + ".digest");
        if (digest.length != hash.length()) {
            // cryptsetup writes the HMAC's length, and a shorter or longer one would weaken or break the check
            throw f.corrupt(p + ".digest: " + digest.length + " bytes, " + hash.luksName() + " gives "
                    + hash.length());
        }
        return new Digest(id, slots, segments, hash, iterations, salt, digest);
    }

    /** The typed accessors: each failure names the JSON path. */
    private record Fields(String resource, long offset) {
        CorruptImageException corrupt(String detail) {
            return new CorruptImageException(resource, offset, "LUKS2 metadata " + detail);
        }

        UnsupportedFeatureException unsupported(String detail) {
            return new UnsupportedFeatureException(resource, Feature.ENCRYPTION, detail);
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> object(Object v, String path) throws CorruptImageException {
            if (v instanceof Map<?, ?> m) {
                return (Map<String, Object>) m;
            }
            throw corrupt(path + ": " + (v == null ? "missing" : "not an object"));
        }

        String string(Object v, String path) throws CorruptImageException {
            if (v instanceof String s) {
                return s;
            }
            throw corrupt(path + ": " + (v == null ? "missing" : "not a string"));
        }

        /** A 64-bit unsigned value written as a decimal string (LUKS2's offsets and sizes), at most 2^63 - 1. */
        long u64(Object v, String path) throws CorruptImageException {
            String s = string(v, path);
            if (s.isEmpty() || s.length() > 19 || !s.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw corrupt(path + ": '" + abbreviate(s) + "' is not a decimal number below 2^63");
            }
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                throw corrupt(path + ": '" + s + "' is not a decimal number below 2^63");
            }
        }

        long range(Object v, String path, long min, long max) throws CorruptImageException {
            if (!(v instanceof Long n)) {
                throw corrupt(path + ": " + (v == null ? "missing" : "not an integer"));
            }
            if (n < min || n > max) {
                throw corrupt(path + ": " + n + " is outside " + min + ".." + max);
            }
            return n;
        }

        /** An id: a decimal number below {@code count} written without leading zeros, so one id has one name. */
        int id(String key, String path, int count) throws CorruptImageException {
            if (key.isEmpty() || key.length() > 3 || !key.chars().allMatch(c -> c >= '0' && c <= '9')
                    || (key.length() > 1 && key.charAt(0) == '0') || Integer.parseInt(key) >= count) {
                throw corrupt(path + ": id '" + abbreviate(key) + "' is not a number below " + count);
            }
            return Integer.parseInt(key);
        }

        List<Integer> ids(Object v, String path) throws CorruptImageException {
            if (!(v instanceof List<?> l)) {
                throw corrupt(path + ": " + (v == null ? "missing" : "not an array"));
            }
            List<Integer> out = new ArrayList<>();
            for (Object o : l) {
                out.add(id(string(o, path), path, MAX_KEYSLOTS));
            }
            return List.copyOf(out);
        }

        LuksHash hash(Object v, String path) throws CorruptImageException, UnsupportedFeatureException {
            String name = string(v, path);
            LuksHash hash = LuksHash.named(name).orElseThrow(() -> unsupported(path + ": hash '" + abbreviate(name)
                    + "' is not supported (only " + LuksHash.names() + ")"));
            if (!hash.available()) {
                throw unsupported(path + ": " + hash.missingBouncyCastle());
            }
            return hash;
        }

        byte[] base64(Object v, String path) throws CorruptImageException {
            String s = string(v, path);
            try {
                return Base64.getDecoder().decode(s);
            } catch (IllegalArgumentException e) {
                throw corrupt(path + ": not base64");
            }
        }

        /** {@code encryption} ({@code aes-xts-plain64}) with a key of {@code keyBytes}. */
        LuksCipherSpec cipher(String encryption, long keyBytes, String path) throws CorruptImageException,
                UnsupportedFeatureException {
            int dash = encryption.indexOf('-');
            if (dash < 0) {
                throw unsupported(path + ": cipher '" + abbreviate(encryption) + "' is not supported (only aes, "
                        + "serpent, twofish and cast5 in xts, cbc, ecb or ctr mode)");
            }
            try {
                return LuksCipherSpec.fromHeader(resource, encryption.substring(0, dash),
                        encryption.substring(dash + 1), keyBytes);
            } catch (CorruptImageException e) {
                throw corrupt(path + ": " + e.detail());
            }
        }

        private static String abbreviate(String s) {
            return s.length() <= 40 ? s : s.substring(0, 40) + "...";
        }
    }

    /** The segment's cipher for a volume key of {@code keyBytes}. */
    static LuksCipherSpec segmentCipher(String resource, long offset, Segment segment, int keyBytes)
            throws CorruptImageException, UnsupportedFeatureException {
        return new Fields(resource, offset).cipher(segment.encryption(), keyBytes, "segments.0.encryption");
    }
}
