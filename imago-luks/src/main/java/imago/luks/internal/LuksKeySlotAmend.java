package imago.luks.internal;

import imago.api.Secrets;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * {@code qemu-img amend} of a LUKS header's key slots ({@code state=active|inactive}, {@code keyslot},
 * {@code new-secret}, {@code old-secret}, {@code iter-time}), with qemu-img 7.2's checks in its order and its
 * words. The rules are written once over a {@link Slots} table: LUKS1's eight slots here ({@link #amend}), LUKS2's
 * up to 32 in {@link Luks2KeySlots}, which adds imago's own KDF options.
 *
 * <p>LUKS1 is crash-safe: a new slot's key material is written and synced before the header names it; an erased
 * slot's material is overwritten with random bytes and synced before the header drops it. Either way the header
 * changes in one write of its 592 bytes, and every other slot keeps working whatever a power loss leaves.
 */
final class LuksKeySlotAmend {
    private static final List<String> NAMES = List.of("state", "keyslot", "new-secret", "old-secret", "iter-time");

    /** One header's key slots as amend sees and changes them. */
    interface Slots {
        /** How many slots the header can have (8 for LUKS1, 32 for LUKS2). */
        int count();

        /** Whether slot {@code slot} is in use. */
        boolean active(int slot);

        /**
         * Whether slot {@code slot} holds the key of the data: erasing the last such slot loses the data. LUKS2
         * may also hold keys bound to no data segment.
         */
        default boolean holdsDataKey(int slot) {
            return active(slot);
        }

        /** The format's options beyond qemu-img's, which only activating takes. */
        default Collection<String> ownOptions() {
            return List.of();
        }

        /** The options that only creating an image takes (named as such when amend is given one). */
        Collection<String> createOptions();

        /** Whether active slot {@code slot} takes {@code passphrase}. */
        boolean unlocks(int slot, byte[] passphrase) throws IOException;

        /**
         * Locks the key into inactive slot {@code slot} under {@code passphrase}, its KDF calibrated to
         * {@code iterTime} ms; {@code options} are amend's, for {@link #ownOptions}.
         */
        void add(int slot, byte[] passphrase, long iterTime, Map<String, String> options) throws IOException;

        /** Erases the active slots {@code slots}. */
        void erase(List<Integer> slots) throws IOException;
    }

    private LuksKeySlotAmend() {
    }

    /**
     * Applies {@code options} to the LUKS1 header {@code h} at the start of {@code storage}, whose master key is
     * {@code key}; returns the header as written.
     *
     * @param prefix how the options are spelled to the user ({@code ""} for luks, {@code "encrypt."} for qcow2)
     * @throws IllegalArgumentException for what qemu-img refuses, with its message
     */
    static LuksHeader amend(Storage storage, LuksHeader h, byte[] key, Map<String, String> options, String prefix,
            Secrets secrets, boolean force, long maxIterations) throws IOException {
        Luks1Slots slots = new Luks1Slots(storage, h, key, maxIterations);
        apply(slots, options, prefix, secrets, force);
        return slots.header;
    }

    /**
     * Applies {@code options} to {@code slots}, refusing what qemu-img refuses in its order and words.
     *
     * @param prefix how the options are spelled to the user ({@code ""} for luks, {@code "encrypt."} for qcow2)
     * @throws IllegalArgumentException for what qemu-img refuses, with its message
     */
    static void apply(Slots slots, Map<String, String> options, String prefix, Secrets secrets, boolean force)
            throws IOException {
        for (String name : options.keySet()) {
            if (!NAMES.contains(name) && !slots.ownOptions().contains(name)) {
                throw new IllegalArgumentException("Invalid parameter '" + prefix + name + "'"
                        + (slots.createOptions().contains(name) || prefix.isEmpty() && name.equals("size")
                                ? "\nThis option is only supported for image creation" : ""));
            }
        }
        String state = options.get("state");
        if (state == null) {
            throw new IllegalArgumentException("Parameter 'state' is missing");
        }
        Integer keyslot = null;
        if (options.containsKey("keyslot")) {
            keyslot = number(prefix + "keyslot", options.get("keyslot"));
        }
        long iterTime = LuksCreate.iterTime(options.get("iter-time"));
        switch (state) {
            case "active" -> activate(slots, options, keyslot, iterTime, secrets);
            case "inactive" -> erase(slots, options, keyslot, secrets, force);
            default -> throw new IllegalArgumentException("Parameter 'state' does not accept value '" + state + "'");
        }
    }

    private static void activate(Slots slots, Map<String, String> o, Integer keyslot, long iterTime, Secrets secrets)
            throws IOException {
        if (o.containsKey("old-secret")) {
            throw new IllegalArgumentException("'old-secret' must not be given when activating keyslots");
        }
        String newSecret = o.get("new-secret");
        if (newSecret == null) {
            throw new IllegalArgumentException("'new-secret' is required to activate a keyslot");
        }
        int slot;
        if (keyslot != null) {
            checkRange(slots, keyslot);
            if (slots.active(keyslot)) {
                throw new IllegalArgumentException("Refusing to overwrite active keyslot " + keyslot
                        + " - please erase it first");
            }
            slot = keyslot;
        } else {
            slot = -1;
            for (int i = 0; i < slots.count() && slot < 0; i++) {
                if (!slots.active(i)) {
                    slot = i;
                }
            }
            if (slot < 0) {
                throw new IllegalArgumentException("Can't add a keyslot - all keyslots are in use");
            }
        }
        byte[] passphrase = secret(secrets, newSecret);
        try {
            slots.add(slot, passphrase, iterTime, o);
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    private static void erase(Slots slots, Map<String, String> o, Integer keyslot, Secrets secrets, boolean force)
            throws IOException {
        if (o.containsKey("new-secret")) {
            throw new IllegalArgumentException("'new-secret' must not be given when erasing keyslots");
        }
        if (o.containsKey("iter-time")) {
            throw new IllegalArgumentException("'iter-time' must not be given when erasing keyslots");
        }
        for (String own : slots.ownOptions()) {
            if (o.containsKey(own)) {
                throw new IllegalArgumentException("'" + own + "' must not be given when erasing keyslots");
            }
        }
        String oldSecret = o.get("old-secret");
        if (keyslot == null && oldSecret == null) {
            throw new IllegalArgumentException("To erase keyslot(s), either explicit keyslot index or the password "
                    + "currently contained in them must be given");
        }
        long holding = 0;
        for (int i = 0; i < slots.count(); i++) {
            if (slots.active(i) && slots.holdsDataKey(i)) {
                holding++;
            }
        }
        List<Integer> erase = new ArrayList<>();
        if (keyslot != null) {
            checkRange(slots, keyslot);
            if (!slots.active(keyslot)) {
                throw new IllegalArgumentException("Given keyslot " + keyslot + " is already erased (inactive) ");
            }
            if (oldSecret != null && !unlocks(slots, keyslot, secrets, oldSecret)) {
                throw new IllegalArgumentException("Given keyslot " + keyslot + " doesn't contain the given old "
                        + "password for erase operation");
            }
            if (slots.holdsDataKey(keyslot) && holding == 1 && !force) {
                throw new IllegalArgumentException("Attempt to erase the only active keyslot " + keyslot + " which "
                        + "will erase all the data in the image irreversibly - refusing operation");
            }
            erase.add(keyslot);
        } else {
            for (int i = 0; i < slots.count(); i++) {
                if (slots.active(i) && unlocks(slots, i, secrets, oldSecret)) {
                    erase.add(i);
                }
            }
            if (erase.isEmpty()) {
                throw new IllegalArgumentException("No keyslots match given (old) password for erase operation");
            }
            if (erase.stream().filter(slots::holdsDataKey).count() == holding && !force) {
                throw new IllegalArgumentException("All the active keyslots match the (old) password that was given "
                        + "and erasing them will erase all the data in the image irreversibly - refusing operation");
            }
        }
        slots.erase(erase);
    }

    private static boolean unlocks(Slots slots, int slot, Secrets secrets, String id) throws IOException {
        byte[] passphrase = secret(secrets, id);
        try {
            return slots.unlocks(slot, passphrase);
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    private static byte[] secret(Secrets secrets, String id) {
        return secrets.get(id).orElseThrow(() -> new IllegalArgumentException("No secret with id '" + id + "'"));
    }

    private static void checkRange(Slots slots, int keyslot) {
        if (keyslot < 0 || keyslot >= slots.count()) {
            throw new IllegalArgumentException("Invalid keyslot " + keyslot + " specified, must be between 0 and "
                    + (slots.count() - 1));
        }
    }

    private static int number(String name, String value) {
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Parameter '" + name + "' expects a number");
        }
    }

    /** LUKS1's eight slots in the 592-byte header at the start of {@code storage}. */
    private static final class Luks1Slots implements Slots {
        private final Storage storage;
        private final byte[] key;
        private final long maxIterations;
        private LuksHeader header;

        Luks1Slots(Storage storage, LuksHeader header, byte[] key, long maxIterations) {
            this.storage = storage;
            this.header = header;
            this.key = key;
            this.maxIterations = maxIterations;
        }

        @Override
        public int count() {
            return LuksHeader.SLOT_COUNT;
        }

        @Override
        public boolean active(int slot) {
            return header.slots().get(slot).active();
        }

        @Override
        public Collection<String> createOptions() {
            return LuksCreate.OPTIONS;
        }

        /** Whether the passphrase opens slot {@code i} alone (the master-key digest matches). */
        @Override
        public boolean unlocks(int i, byte[] passphrase) throws IOException {
            LuksHeader h = header;
            List<LuksKeySlot> only = new ArrayList<>();
            for (int k = 0; k < LuksHeader.SLOT_COUNT; k++) {
                only.add(k == i ? h.slots().get(k) : h.slots().get(k).disabled());
            }
            LuksHeader one = new LuksHeader(h.spec(), h.hash(), h.payloadSector(), h.mkDigest(), h.mkSalt(),
                    h.mkIterations(), h.uuid(), List.copyOf(only));
            try {
                byte[] k = LuksKeys.unlock(storage.name(), storage, one, passphrase, maxIterations);
                Arrays.fill(k, (byte) 0);
                return true;
            } catch (imago.api.ImageLimitException e) {
                throw e;
            } catch (imago.api.ImageException e) {
                return false;
            }
        }

        @Override
        public void add(int slot, byte[] passphrase, long iterTime, Map<String, String> options)
                throws IOException {
            LuksHeader h = header;
            long iterations = Math.min(0xffffffffL, LuksCreate.calibrated(h.hash(), iterTime));
            LuksKeySlot filled = LuksKeys.lock(storage, h, h.slots().get(slot), key, passphrase, iterations,
                    new SecureRandom());
            storage.flush();
            storage.sync();
            write(h.withSlot(slot, filled));
        }

        @Override
        public void erase(List<Integer> slots) throws IOException {
            SecureRandom random = new SecureRandom();
            for (int i : slots) {
                LuksKeySlot slot = header.slots().get(i);
                byte[] noise = new byte[(int) (LuksHeader.materialSectors(header.spec().keyBytes())
                        * LuksHeader.SECTOR)];
                random.nextBytes(noise);
                storage.write(ByteBuffer.wrap(noise), slot.materialSector() * LuksHeader.SECTOR);
                storage.flush();
                storage.sync();
                write(header.withSlot(i, slot.disabled()));
            }
        }

        private void write(LuksHeader h) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(LuksHeader.LENGTH);
            h.writeTo(b);
            storage.write(b.clear(), 0);
            storage.flush();
            storage.sync();
            header = h;
        }
    }
}
