package imago.luks.internal;

import imago.api.Feature;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import imago.luks.crypto.AntiForensic;
import imago.luks.crypto.Argon2;
import imago.luks.crypto.Pbkdf2;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * LUKS2 key slots: finding the volume key a passphrase unlocks (each slot whose priority allows, preferred ones
 * first: its KDF, decrypting its area, the anti-forensic merge, the digest check) and locking a new volume key
 * into a slot.
 *
 * <p>The KDF parameters come from the header, so each is checked against a limit before any work: PBKDF2
 * iterations as LUKS1 ({@link LuksKeys#maxIterations}), Argon2 memory ({@value #MAX_MEMORY_OPTION}, KiB, default
 * {@value #DEFAULT_MAX_MEMORY_KIB}: cryptsetup's own ceiling) and Argon2 work, memory times passes
 * ({@value #MAX_WORK_OPTION}, KiB, default {@value #DEFAULT_MAX_WORK_KIB}), each also a system property. A slot's
 * memory must also fit the JVM's heap.
 */
final class Luks2Keys {
    static final String MAX_MEMORY_OPTION = "argon2-max-memory";
    static final String MAX_MEMORY_PROPERTY = "imago.luks.argon2MaxMemory";
    static final String MAX_WORK_OPTION = "argon2-max-work";
    static final String MAX_WORK_PROPERTY = "imago.luks.argon2MaxWork";
    /** 4 GiB, the most memory cryptsetup lets an Argon2 slot use. */
    static final long DEFAULT_MAX_MEMORY_KIB = 4L * 1024 * 1024;
    /**
     * Memory times passes, 16 GiB: cryptsetup's default slot (1 GiB, 4 or more passes calibrated to 2 s on a fast
     * machine) or a small-memory slot with many passes, about 30 s of Bouncy Castle's Argon2 here at most.
     */
    static final long DEFAULT_MAX_WORK_KIB = 16L * 1024 * 1024;

    /** The limits of one open. */
    record Limits(long maxIterations, long maxMemoryKiB, long maxWorkKiB) {
        static Limits of(String resource, Map<String, String> options) {
            return new Limits(LuksKeys.maxIterations(resource, options),
                    positive(resource, options, MAX_MEMORY_OPTION, MAX_MEMORY_PROPERTY, DEFAULT_MAX_MEMORY_KIB),
                    positive(resource, options, MAX_WORK_OPTION, MAX_WORK_PROPERTY, DEFAULT_MAX_WORK_KIB));
        }

        private static long positive(String resource, Map<String, String> options, String option, String property,
                long fallback) {
            String v = options.getOrDefault(option, System.getProperty(property));
            if (v == null) {
                return fallback;
            }
            try {
                long n = Long.parseLong(v);
                if (n > 0) {
                    return n;
                }
            } catch (NumberFormatException e) {
                // refused below
            }
            throw new IllegalArgumentException(resource + ": " + option + " must be a positive number, not '" + v
                    + "'");
        }
    }

    private Luks2Keys() {
    }

    /**
     * The volume key {@code passphrase} unlocks.
     *
     * @throws ImageLimitException if a slot tried or its digest asks for more work than {@code limits}
     * @throws UnsupportedFeatureException if only Argon2 slots were left untried because Bouncy Castle is absent
     * @throws ImageException if no slot takes the passphrase
     */
    static byte[] unlock(String resource, Storage storage, Luks2Header h, byte[] passphrase, Limits limits)
            throws IOException {
        List<Luks2Metadata.Keyslot> order = new ArrayList<>(h.metadata().keyslots());
        order.removeIf(k -> k.priority() == 0);
        order.sort(Comparator.comparingInt(Luks2Metadata.Keyslot::priority).reversed());
        UnsupportedFeatureException missing = null;
        for (Luks2Metadata.Keyslot slot : order) {
            Luks2Metadata.Digest digest = digestOf(h, slot);
            if (digest == null) {
                continue;
            }
            checkPbkdf2(resource, "digest " + digest.id(), digest.iterations(), limits);
            if (slot.kdf() instanceof Luks2Metadata.Kdf.Argon2 && !Argon2.available()) {
                missing = new UnsupportedFeatureException(resource, Feature.ENCRYPTION, "key slot " + slot.id()
                        + " uses Argon2, which needs Bouncy Castle (org.bouncycastle:bcprov-jdk18on) on the module "
                        + "path");
                continue;
            }
            byte[] key = tryKeyslot(resource, storage, slot, passphrase, limits);
            try {
                byte[] check = Pbkdf2.derive(digest.hash(), key, digest.salt(), digest.iterations(),
                        digest.digest().length);
                if (MessageDigest.isEqual(check, digest.digest())) {
                    byte[] out = key;
                    key = null;
                    return out;
                }
            } finally {
                if (key != null) {
                    Arrays.fill(key, (byte) 0);
                }
            }
        }
        if (missing != null) {
            throw missing;
        }
        if (order.isEmpty()) {
            throw new ImageException(resource, "LUKS2 header has no usable key slot");
        }
        throw new ImageException(resource, "Invalid password, cannot unlock any keyslot");
    }

    /**
     * Whether {@code passphrase} opens key slot {@code slot} on its own, whatever its priority: the key its area
     * gives matches a digest that lists the slot (the data segment's, or an unbound key's own).
     *
     * @throws ImageLimitException if the slot or its digest asks for more work than {@code limits}
     * @throws UnsupportedFeatureException if the slot uses Argon2 and Bouncy Castle is absent
     */
    static boolean opens(String resource, Storage storage, Luks2Header h, Luks2Metadata.Keyslot slot,
            byte[] passphrase, Limits limits) throws IOException {
        List<Luks2Metadata.Digest> digests = h.metadata().digests().stream()
                .filter(d -> d.keyslots().contains(slot.id())).toList();
        if (digests.isEmpty()) {
            return false;
        }
        for (Luks2Metadata.Digest d : digests) {
            checkPbkdf2(resource, "digest " + d.id(), d.iterations(), limits);
        }
        if (slot.kdf() instanceof Luks2Metadata.Kdf.Argon2 && !Argon2.available()) {
            throw new UnsupportedFeatureException(resource, Feature.ENCRYPTION, "key slot " + slot.id()
                    + " uses Argon2, which needs Bouncy Castle (org.bouncycastle:bcprov-jdk18on) on the module path");
        }
        byte[] key = tryKeyslot(resource, storage, slot, passphrase, limits);
        try {
            for (Luks2Metadata.Digest d : digests) {
                byte[] check = Pbkdf2.derive(d.hash(), key, d.salt(), d.iterations(), d.digest().length);
                if (MessageDigest.isEqual(check, d.digest())) {
                    return true;
                }
            }
            return false;
        } finally {
            Arrays.fill(key, (byte) 0);
        }
    }

    /** The digest that covers {@code slot} and the data segment, or {@code null}. */
    private static Luks2Metadata.Digest digestOf(Luks2Header h, Luks2Metadata.Keyslot slot) {
        for (Luks2Metadata.Digest d : h.metadata().digests()) {
            if (d.keyslots().contains(slot.id()) && d.segments().contains(0)) {
                return d;
            }
        }
        return null;
    }

    private static byte[] tryKeyslot(String resource, Storage storage, Luks2Metadata.Keyslot slot,
            byte[] passphrase, Limits limits) throws IOException {
        byte[] material = new byte[(int) slot.materialLength()];
        storage.read(ByteBuffer.wrap(material), slot.areaOffset());
        byte[] slotKey = derive(resource, slot, passphrase, limits);
        try {
            slot.areaCipher().cipher(slotKey).decrypt(material, 0, material.length, 0);
        } finally {
            Arrays.fill(slotKey, (byte) 0);
        }
        byte[] key = AntiForensic.merge(material, slot.keySize(), slot.stripes(), slot.afHash());
        Arrays.fill(material, (byte) 0);
        return key;
    }

    /** The slot's area key from {@code passphrase}, after checking the KDF's cost against {@code limits}. */
    static byte[] derive(String resource, Luks2Metadata.Keyslot slot, byte[] passphrase, Limits limits)
            throws ImageLimitException {
        int length = slot.areaCipher().keyBytes();
        return switch (slot.kdf()) {
            case Luks2Metadata.Kdf.Pbkdf2 p -> {
                checkPbkdf2(resource, "key slot " + slot.id(), p.iterations(), limits);
                yield Pbkdf2.derive(p.hash(), passphrase, p.salt(), p.iterations(), length);
            }
            case Luks2Metadata.Kdf.Argon2 a -> {
                checkArgon2(resource, slot.id(), a, limits);
                yield Argon2.derive(a.type(), passphrase, a.salt(), (int) a.time(), (int) a.memory(),
                        (int) a.cpus(), length);
            }
        };
    }

    private static void checkPbkdf2(String resource, String what, long iterations, Limits limits)
            throws ImageLimitException {
        if (iterations > limits.maxIterations()) {
            throw new ImageLimitException(resource, what + " asks for " + iterations + " PBKDF2 iterations, more "
                    + "than the limit of " + limits.maxIterations() + " (raise it with the open option "
                    + LuksKeys.MAX_ITERATIONS_OPTION + "=N or -D" + LuksKeys.MAX_ITERATIONS_PROPERTY + "=N)");
        }
    }

    private static void checkArgon2(String resource, int id, Luks2Metadata.Kdf.Argon2 a, Limits limits)
            throws ImageLimitException {
        String what = "key slot " + id + " (" + a.type().name().toLowerCase(java.util.Locale.ROOT) + ")";
        if (a.memory() > limits.maxMemoryKiB()) {
            throw new ImageLimitException(resource, what + " asks for " + a.memory() + " KiB of Argon2 memory, more "
                    + "than the limit of " + limits.maxMemoryKiB() + " KiB (raise it with the open option "
                    + MAX_MEMORY_OPTION + "=KiB or -D" + MAX_MEMORY_PROPERTY + "=KiB)");
        }
        if (Math.multiplyHigh(a.memory(), a.time()) != 0 || a.memory() * a.time() > limits.maxWorkKiB()) {
            throw new ImageLimitException(resource, what + " asks for " + a.time() + " Argon2 passes over "
                    + a.memory() + " KiB, more work than the limit of " + limits.maxWorkKiB() + " KiB (raise it "
                    + "with the open option " + MAX_WORK_OPTION + "=KiB or -D" + MAX_WORK_PROPERTY + "=KiB)");
        }
        if (a.cpus() * 8 > a.memory()) {
            throw new ImageLimitException(resource, what + " has " + a.cpus() + " lanes for " + a.memory()
                    + " KiB: Argon2 needs 8 KiB per lane");
        }
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (a.memory() * 1024 > free) {
            throw new ImageLimitException(resource, what + " needs " + a.memory() / 1024 + " MiB of Argon2 memory, "
                    + "more than the " + free / (1024 * 1024) + " MiB this JVM has free (raise -Xmx)");
        }
    }

    /**
     * Writes {@code key} into {@code slot}'s area, split into its stripes and encrypted under the key
     * {@code passphrase} derives with the slot's KDF.
     */
    static void lock(Storage storage, Luks2Metadata.Keyslot slot, byte[] key, byte[] passphrase,
            SecureRandom random) throws IOException {
        byte[] split = AntiForensic.split(key, slot.stripes(), slot.afHash(), random);
        byte[] material = Arrays.copyOf(split, (int) slot.materialLength());
        Arrays.fill(split, (byte) 0);
        Limits none = new Limits(Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE);
        byte[] slotKey = derive(storage.name(), slot, passphrase, none);
        try {
            slot.areaCipher().cipher(slotKey).encrypt(material, 0, material.length, 0);
        } finally {
            Arrays.fill(slotKey, (byte) 0);
        }
        storage.write(ByteBuffer.wrap(material), slot.areaOffset());
        Arrays.fill(material, (byte) 0);
    }
}
