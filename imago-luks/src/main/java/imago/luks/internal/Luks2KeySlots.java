package imago.luks.internal;

import imago.api.Secrets;
import imago.api.spi.Storage;
import imago.luks.crypto.LuksHash;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LUKS2 header's key slots as {@code amend} changes them ({@link LuksKeySlotAmend}'s rules, slots 0 to 31), the
 * way {@code cryptsetup luksAddKey} and {@code luksKillSlot} do:
 *
 * <ul>
 *   <li>adding: the new slot's area is the first gap in the key-slot area that holds its 4000 stripes rounded up
 *       to 4 KiB (after the two header copies, within {@code keyslots_size}, apart from every other area); its KDF
 *       is the existing slots' (type, Argon2 memory and lanes, PBKDF2 hash) unless {@code pbkdf},
 *       {@code pbkdf-memory} or {@code pbkdf-parallel} say otherwise, calibrated to {@code iter-time}; its area
 *       is encrypted with the data segment's cipher; the data segment's digest lists it. The material is written
 *       and synced before the header names it;</li>
 *   <li>erasing: the slot's whole area is overwritten with random bytes and synced, then the header drops the
 *       slot and every reference to it (digests, tokens: a token stays, without that slot; an unbound key's
 *       digest, which then names nothing, goes).</li>
 * </ul>
 *
 * The header changes through {@link Luks2Commit}, one copy at a time. Every other member of the metadata
 * (tokens, unknown fields, other digests, the config) is kept as read.
 */
final class Luks2KeySlots implements LuksKeySlotAmend.Slots {
    /** imago's own amend options for LUKS2, as {@code create} names them. */
    static final List<String> OWN_OPTIONS = List.of("pbkdf", "pbkdf-memory", "pbkdf-parallel");
    private static final int STRIPES = 4000;
    private static final int AREA_ALIGNMENT = 4096;
    /** Erased areas are overwritten in pieces of at most this many bytes. */
    private static final int WIPE_CHUNK = 1 << 20;

    private final Storage storage;
    private final byte[] key;
    private final Luks2Keys.Limits limits;
    private final SecureRandom random = new SecureRandom();
    private Luks2Header header;

    private Luks2KeySlots(Storage storage, Luks2Header header, byte[] key, Luks2Keys.Limits limits) {
        this.storage = storage;
        this.header = header;
        this.key = key;
        this.limits = limits;
    }

    /**
     * Applies amend's {@code options} to the LUKS2 header {@code h} of {@code storage}, whose volume key is
     * {@code key}; returns the header as written.
     *
     * @param limits the open's KDF limits, for trying {@code old-secret} against the slots
     * @throws IllegalArgumentException for what qemu-img refuses (its words), and for what LUKS2 cannot take (no
     *     room left in the key-slot area or the JSON area)
     */
    static Luks2Header amend(Storage storage, Luks2Header h, byte[] key, Map<String, String> options,
            Secrets secrets, boolean force, Luks2Keys.Limits limits) throws IOException {
        Luks2KeySlots slots = new Luks2KeySlots(storage, h, key, limits);
        LuksKeySlotAmend.apply(slots, options, "", secrets, force);
        return slots.header;
    }

    private Luks2Metadata.Keyslot slot(int id) {
        for (Luks2Metadata.Keyslot k : header.metadata().keyslots()) {
            if (k.id() == id) {
                return k;
            }
        }
        return null;
    }

    @Override
    public int count() {
        return Luks2Metadata.MAX_KEYSLOTS;
    }

    @Override
    public boolean active(int slot) {
        return slot(slot) != null;
    }

    /** Whether the data segment's digest lists the slot (an unbound key opens no data). */
    @Override
    public boolean holdsDataKey(int slot) {
        return header.metadata().digests().stream()
                .anyMatch(d -> d.segments().contains(0) && d.keyslots().contains(slot));
    }

    @Override
    public Collection<String> ownOptions() {
        return OWN_OPTIONS;
    }

    @Override
    public Collection<String> createOptions() {
        return Luks2Create.names();
    }

    @Override
    public boolean unlocks(int slot, byte[] passphrase) throws IOException {
        return Luks2Keys.opens(storage.name(), storage, header, slot(slot), passphrase, limits);
    }

    @Override
    public void add(int id, byte[] passphrase, long iterTime, Map<String, String> options) throws IOException {
        Luks2Metadata.Keyslot template = template();
        Luks2Create.KdfOptions kdfOptions = switch (template == null ? null : template.kdf()) {
            case Luks2Metadata.Kdf.Argon2 a -> Luks2Create.KdfOptions.of(options,
                    a.type() == imago.luks.crypto.Argon2.Type.ARGON2I ? "argon2i" : "argon2id", a.memory(),
                    a.cpus());
            case Luks2Metadata.Kdf.Pbkdf2 p -> Luks2Create.KdfOptions.of(options, "pbkdf2",
                    Luks2Create.DEFAULT_MEMORY_KIB, 4);
            case null -> Luks2Create.KdfOptions.of(options, "argon2id", Luks2Create.DEFAULT_MEMORY_KIB, 4);
        };
        LuksHash hash = template == null ? LuksHash.SHA256
                : template.kdf() instanceof Luks2Metadata.Kdf.Pbkdf2 p ? p.hash() : template.afHash();
        int keyBytes = header.volumeKeyBytes();
        long length = roundUp((long) keyBytes * STRIPES);
        long offset = gap(length);
        LuksCipherSpec cipher = header.segmentCipher();
        Luks2Metadata.Kdf kdf = kdfOptions.calibrate(hash, iterTime, cipher.keyBytes(), random);
        Luks2Metadata.Keyslot slot = new Luks2Metadata.Keyslot(id, keyBytes, 1, STRIPES, hash, kdf, offset, length,
                header.metadata().segment().encryption(), cipher);

        Map<String, Object> root = tree();
        Map<String, Object> keyslots = object(root, "keyslots");
        keyslots.put(Integer.toString(id), slot.toJson());
        root.put("keyslots", byId(keyslots));
        for (Object d : object(root, "digests").values()) {
            Map<String, Object> digest = object(d);
            if (ids(digest, "segments").contains("0")) {
                List<Object> bound = ids(digest, "keyslots");
                if (!bound.contains(Integer.toString(id))) {
                    bound.add(Integer.toString(id));
                }
                break;
            }
        }
        Luks2Commit commit = Luks2Commit.of(storage, header, root);
        Luks2Keys.lock(storage, slot, key, passphrase, random);
        storage.flush();
        storage.sync();
        header = commit.write(storage);
    }

    @Override
    public void erase(List<Integer> ids) throws IOException {
        Map<String, Object> root = tree();
        Map<String, Object> keyslots = object(root, "keyslots");
        for (int id : ids) {
            String name = Integer.toString(id);
            keyslots.remove(name);
            for (String section : List.of("digests", "tokens")) {
                for (Object o : object(root, section).values()) {
                    ids(object(o), "keyslots").removeIf(name::equals);
                }
            }
            // an unbound key's digest, left with no slot and no segment, goes with its slot (as in cryptsetup)
            object(root, "digests").values().removeIf(o -> ids(object(o), "keyslots").isEmpty()
                    && ids(object(o), "segments").isEmpty());
        }
        Luks2Commit commit = Luks2Commit.of(storage, header, root);
        for (int id : ids) {
            Luks2Metadata.Keyslot slot = slot(id);
            wipe(slot.areaOffset(), slot.areaSize());
        }
        storage.flush();
        storage.sync();
        header = commit.write(storage);
    }

    /** The slot whose KDF a new one copies: the lowest-numbered one that holds the data key, else any, else none. */
    private Luks2Metadata.Keyslot template() {
        Luks2Metadata.Keyslot any = null;
        for (Luks2Metadata.Keyslot k : header.metadata().keyslots()) {
            if (holdsDataKey(k.id())) {
                return k;
            }
            if (any == null) {
                any = k;
            }
        }
        return any;
    }

    /**
     * Where a new area of {@code length} bytes goes: the first place from the start of the key-slot area (after
     * the two header copies) where it fits before the next area, as cryptsetup allocates.
     *
     * @throws IllegalArgumentException if the key-slot area has no such room
     */
    private long gap(long length) {
        long start = 2 * header.hdrSize();
        long end = start + header.metadata().keyslotsSize();
        List<Luks2Metadata.Keyslot> areas = new ArrayList<>(header.metadata().keyslots());
        areas.sort(Comparator.comparingLong(Luks2Metadata.Keyslot::areaOffset));
        long offset = start;
        for (Luks2Metadata.Keyslot a : areas) {
            if (offset + length <= a.areaOffset()) {
                break;
            }
            offset = Math.max(offset, roundUp(a.areaOffset() + a.areaSize()));
        }
        if (offset + length > end) {
            throw new IllegalArgumentException("Can't add a keyslot - the LUKS2 key-slot area (" + header.metadata()
                    .keyslotsSize() + " bytes) has no room left for another " + length + "-byte key slot area");
        }
        return offset;
    }

    private static long roundUp(long n) {
        return (n + AREA_ALIGNMENT - 1) / AREA_ALIGNMENT * AREA_ALIGNMENT;
    }

    /** Overwrites {@code length} bytes at {@code offset} with random bytes. */
    private void wipe(long offset, long length) throws IOException {
        byte[] noise = new byte[(int) Math.min(length, WIPE_CHUNK)];
        for (long done = 0; done < length; done += noise.length) {
            random.nextBytes(noise);
            int n = (int) Math.min(noise.length, length - done);
            storage.write(ByteBuffer.wrap(noise, 0, n), offset + done);
        }
    }

    /** The metadata as read, to edit: everything imago does not know stays as it was. */
    @SuppressWarnings("unchecked")
    private Map<String, Object> tree() throws IOException {
        try {
            return (Map<String, Object>) Luks2Json.mutableCopy(Luks2Json.parse(header.onDisk().json()));
        } catch (Luks2Json.JsonException e) {
            // read once already: parsing it again cannot fail
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, Object> object(Map<String, Object> root, String name) {
        return object(root.get(name));
    }

    /** A member the reader checked to be an object. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object o) {
        return (Map<String, Object>) o;
    }

    /** An id list (digests' and tokens' {@code keyslots}, {@code segments}) the reader checked to be strings. */
    @SuppressWarnings("unchecked")
    private static List<Object> ids(Map<String, Object> owner, String name) {
        return (List<Object>) owner.get(name);
    }

    /** The key slots in the order of their ids, as cryptsetup lists them. */
    private static Map<String, Object> byId(Map<String, Object> keyslots) {
        Map<String, Object> out = new LinkedHashMap<>();
        keyslots.keySet().stream().sorted(Comparator.comparingInt(Integer::parseInt))
                .forEach(k -> out.put(k, keyslots.get(k)));
        return out;
    }
}
