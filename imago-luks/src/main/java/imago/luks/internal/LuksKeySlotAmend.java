package imago.luks.internal;

import imago.api.Secrets;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * {@code qemu-img amend} of a LUKS1 header's key slots ({@code state=active|inactive}, {@code keyslot},
 * {@code new-secret}, {@code old-secret}, {@code iter-time}), with qemu-img 7.2's checks in its order and its
 * words. Crash-safe: a new slot's key material is written and synced before the header names it; an erased slot's
 * material is overwritten with random bytes and synced before the header drops it. Either way the header changes in
 * one write of its 592 bytes, and every other slot keeps working whatever a power loss leaves.
 */
final class LuksKeySlotAmend {
    private static final List<String> NAMES = List.of("state", "keyslot", "new-secret", "old-secret", "iter-time");

    private LuksKeySlotAmend() {
    }

    /**
     * Applies {@code options} to the header {@code h} at the start of {@code storage}, whose master key is
     * {@code key}; returns the header as written.
     *
     * @param prefix how the options are spelled to the user ({@code ""} for luks, {@code "encrypt."} for qcow2)
     * @throws IllegalArgumentException for what qemu-img refuses, with its message
     */
    static LuksHeader amend(Storage storage, LuksHeader h, byte[] key, Map<String, String> options, String prefix,
            Secrets secrets, boolean force, long maxIterations) throws IOException {
        for (String name : options.keySet()) {
            if (!NAMES.contains(name)) {
                throw new IllegalArgumentException("Invalid parameter '" + prefix + name + "'"
                        + (LuksCreate.OPTIONS.contains(name) ? "\nThis option is only supported for image creation"
                                : ""));
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
        return switch (state) {
            case "active" -> activate(storage, h, key, options, keyslot, iterTime, secrets);
            case "inactive" -> erase(storage, h, options, keyslot, secrets, force, maxIterations);
            default -> throw new IllegalArgumentException("Parameter 'state' does not accept value '" + state + "'");
        };
    }

    private static LuksHeader activate(Storage storage, LuksHeader h, byte[] key, Map<String, String> o,
            Integer keyslot, long iterTime, Secrets secrets) throws IOException {
        if (o.containsKey("old-secret")) {
            throw new IllegalArgumentException("'old-secret' must not be given when activating keyslots");
        }
        String newSecret = o.get("new-secret");
        if (newSecret == null) {
            throw new IllegalArgumentException("'new-secret' is required to activate a keyslot");
        }
        int slot;
        if (keyslot != null) {
            checkRange(keyslot);
            if (h.slots().get(keyslot).active()) {
                throw new IllegalArgumentException("Refusing to overwrite active keyslot " + keyslot
                        + " - please erase it first");
            }
            slot = keyslot;
        } else {
            slot = -1;
            for (int i = 0; i < LuksHeader.SLOT_COUNT && slot < 0; i++) {
                if (!h.slots().get(i).active()) {
                    slot = i;
                }
            }
            if (slot < 0) {
                throw new IllegalArgumentException("Can't add a keyslot - all keyslots are in use");
            }
        }
        byte[] passphrase = secret(secrets, newSecret);
        try {
            long iterations = Math.min(0xffffffffL, LuksCreate.calibrated(h.hash(), iterTime));
            LuksKeySlot filled = LuksKeys.lock(storage, h, h.slots().get(slot), key, passphrase, iterations,
                    new SecureRandom());
            storage.flush();
            storage.sync();
            return write(storage, h.withSlot(slot, filled));
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    private static LuksHeader erase(Storage storage, LuksHeader h, Map<String, String> o, Integer keyslot,
            Secrets secrets, boolean force, long maxIterations) throws IOException {
        if (o.containsKey("new-secret")) {
            throw new IllegalArgumentException("'new-secret' must not be given when erasing keyslots");
        }
        if (o.containsKey("iter-time")) {
            throw new IllegalArgumentException("'iter-time' must not be given when erasing keyslots");
        }
        String oldSecret = o.get("old-secret");
        if (keyslot == null && oldSecret == null) {
            throw new IllegalArgumentException("To erase keyslot(s), either explicit keyslot index or the password "
                    + "currently contained in them must be given");
        }
        long active = h.slots().stream().filter(LuksKeySlot::active).count();
        List<Integer> erase = new ArrayList<>();
        if (keyslot != null) {
            checkRange(keyslot);
            if (!h.slots().get(keyslot).active()) {
                throw new IllegalArgumentException("Given keyslot " + keyslot + " is already erased (inactive) ");
            }
            if (oldSecret != null && !unlocks(storage, h, keyslot, secrets, oldSecret, maxIterations)) {
                throw new IllegalArgumentException("Given keyslot " + keyslot + " doesn't contain the given old "
                        + "password for erase operation");
            }
            if (active == 1 && !force) {
                throw new IllegalArgumentException("Attempt to erase the only active keyslot " + keyslot + " which "
                        + "will erase all the data in the image irreversibly - refusing operation");
            }
            erase.add(keyslot);
        } else {
            for (int i = 0; i < LuksHeader.SLOT_COUNT; i++) {
                if (h.slots().get(i).active() && unlocks(storage, h, i, secrets, oldSecret, maxIterations)) {
                    erase.add(i);
                }
            }
            if (erase.isEmpty()) {
                throw new IllegalArgumentException("No keyslots match given (old) password for erase operation");
            }
            if (erase.size() == active && !force) {
                throw new IllegalArgumentException("All the active keyslots match the (old) password that was given "
                        + "and erasing them will erase all the data in the image irreversibly - refusing operation");
            }
        }
        LuksHeader out = h;
        SecureRandom random = new SecureRandom();
        for (int i : erase) {
            LuksKeySlot slot = h.slots().get(i);
            byte[] noise = new byte[(int) (LuksHeader.materialSectors(h.spec().keyBytes()) * LuksHeader.SECTOR)];
            random.nextBytes(noise);
            storage.write(ByteBuffer.wrap(noise), slot.materialSector() * LuksHeader.SECTOR);
            storage.flush();
            storage.sync();
            out = write(storage, out.withSlot(i, slot.disabled()));
        }
        return out;
    }

    /** Whether the passphrase of secret {@code id} opens slot {@code i} (the master-key digest matches). */
    private static boolean unlocks(Storage storage, LuksHeader h, int i, Secrets secrets, String id,
            long maxIterations) throws IOException {
        byte[] passphrase = secret(secrets, id);
        List<LuksKeySlot> only = new ArrayList<>();
        for (int k = 0; k < LuksHeader.SLOT_COUNT; k++) {
            only.add(k == i ? h.slots().get(k) : h.slots().get(k).disabled());
        }
        LuksHeader one = new LuksHeader(h.spec(), h.hash(), h.payloadSector(), h.mkDigest(), h.mkSalt(),
                h.mkIterations(), h.uuid(), List.copyOf(only));
        try {
            byte[] key = LuksKeys.unlock(storage.name(), storage, one, passphrase, maxIterations);
            Arrays.fill(key, (byte) 0);
            return true;
        } catch (imago.api.ImageLimitException e) {
            throw e;
        } catch (imago.api.ImageException e) {
            return false;
        } finally {
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    private static LuksHeader write(Storage storage, LuksHeader h) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(LuksHeader.LENGTH);
        h.writeTo(b);
        storage.write(b.clear(), 0);
        storage.flush();
        storage.sync();
        return h;
    }

    private static byte[] secret(Secrets secrets, String id) {
        return secrets.get(id).orElseThrow(() -> new IllegalArgumentException("No secret with id '" + id + "'"));
    }

    private static void checkRange(int keyslot) {
        if (keyslot < 0 || keyslot >= LuksHeader.SLOT_COUNT) {
            throw new IllegalArgumentException("Invalid keyslot " + keyslot + " specified, must be between 0 and "
                    + (LuksHeader.SLOT_COUNT - 1));
        }
    }

    private static int number(String name, String value) {
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Parameter '" + name + "' expects a number");
        }
    }
}
