package imago.luks.internal;

import imago.api.CreateOptions;
import imago.api.Measurement;
import imago.api.spi.Storage;
import imago.luks.crypto.Argon2;
import imago.luks.crypto.LuksHash;
import imago.luks.crypto.Pbkdf2;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Writes a new LUKS2 container as {@code cryptsetup luksFormat --type luks2} lays one out by default: two 16 KiB
 * header copies, the key-slot area up to 16 MiB (slot 0's area at 32 KiB, its 4000 stripes rounded up to 4 KiB),
 * the data segment from 16 MiB to the end of the file ({@code dynamic}), one PBKDF2 digest of the volume key.
 *
 * <p>Options: qemu-img's luks ones ({@code key-secret}, {@code cipher-alg}, {@code cipher-mode},
 * {@code ivgen-alg}, {@code ivgen-hash-alg}, {@code hash-alg}, {@code iter-time}) and imago's own:
 * {@value #VERSION}{@code =2} (which chooses this class), {@code pbkdf} ({@code argon2id}, the default as in
 * cryptsetup, {@code argon2i} or {@code pbkdf2}), {@code pbkdf-memory} (Argon2 KiB, default
 * {@value #DEFAULT_MEMORY_KIB}), {@code pbkdf-parallel} (Argon2 lanes, default 4) and {@code sector-size}
 * (512 or 4096, default 512).
 */
final class Luks2Create {
    /** The option that chooses the LUKS version of a new container (imago's own: qemu-img creates LUKS1 only). */
    static final String VERSION = "luks-version";
    /** imago's LUKS2 create options, after qemu-img's. */
    static final List<String> OWN_OPTIONS = List.of(VERSION, "pbkdf", "pbkdf-memory", "pbkdf-parallel",
            "sector-size");
    /** Every LUKS2 create option: qemu-img's luks ones, then imago's. */
    static final List<String> OPTIONS = Stream.concat(LuksCreate.OPTIONS.stream(), OWN_OPTIONS.stream())
            .toList();
    static final long HDR_SIZE = 16 * 1024;
    static final long DATA_OFFSET = 16L * 1024 * 1024;
    static final long DEFAULT_MEMORY_KIB = 256 * 1024;
    private static final long DEFAULT_ITER_TIME = 2000;
    private static final int MIN_ARGON2_TIME = 4;
    private static final long MIN_ITERATIONS = 1000;
    private static final int STRIPES = 4000;

    private Luks2Create() {
    }

    /** Whether {@code options} ask for LUKS2. */
    static boolean wanted(Map<String, String> options) {
        String v = options.get(VERSION);
        if (v == null || v.equals("1")) {
            return false;
        }
        if (v.equals("2")) {
            return true;
        }
        throw new IllegalArgumentException("Invalid parameter '" + v + "' for " + VERSION + " (1 or 2)");
    }

    /** {@code options} without {@value #VERSION}, for the LUKS1 creator (which knows qemu-img's options only). */
    static CreateOptions withoutVersion(CreateOptions options) {
        return without(options, VERSION);
    }

    /** {@code options} without the format option {@code name}. */
    static CreateOptions without(CreateOptions options, String name) {
        if (!options.formatOptions().containsKey(name)) {
            return options;
        }
        Map<String, String> o = new LinkedHashMap<>(options.formatOptions());
        o.remove(name);
        return new CreateOptions(options.size(), options.preallocation(), options.backingFile(),
                options.backingFormat(), o, options.secrets());
    }

    static Set<String> names() {
        return Set.copyOf(OPTIONS);
    }

    static Measurement measure(CreateOptions options, long size) {
        LuksCreateChecks.measurable(options.formatOptions(), OPTIONS);
        int sectorSize = (int) positive(options.formatOptions(), "sector-size", 512, 4096);
        long total = DATA_OFFSET + (size + sectorSize - 1) / sectorSize * sectorSize;
        return new Measurement(total, total, OptionalLong.empty());
    }

    /**
     * Refuses {@code options} as {@link #create} would, before anything is written.
     *
     * @throws IllegalArgumentException if an option is unknown or invalid
     */
    static void check(CreateOptions options) {
        LuksCreateChecks.check(options, OPTIONS, Luks2Create::checkOwn);
    }

    /** LUKS2's own value checks, after the cipher's: the iteration time, the sector size, the KDF. */
    private static void checkOwn(Map<String, String> o) {
        positive(o, "iter-time", DEFAULT_ITER_TIME, Long.MAX_VALUE);
        sectorSize(o);
        KdfOptions.of(o, "argon2id", DEFAULT_MEMORY_KIB, 4);
    }

    private static int sectorSize(Map<String, String> o) {
        int sectorSize = (int) positive(o, "sector-size", 512, 4096);
        if (sectorSize != 512 && sectorSize != 4096) {
            throw new IllegalArgumentException("Invalid parameter '" + sectorSize + "' for sector-size (512 or "
                    + "4096)");
        }
        return sectorSize;
    }

    static void create(Storage storage, CreateOptions options) throws IOException {
        byte[] passphrase = LuksCreateChecks.passphrase(options, OPTIONS, Luks2Create::checkOwn);
        Map<String, String> o = options.formatOptions();
        long size = options.size().getAsLong();
        LuksCipherSpec spec = LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"),
                o.get("ivgen-alg"), o.get("ivgen-hash-alg"));
        LuksHash hash = LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        long iterTime = positive(o, "iter-time", DEFAULT_ITER_TIME, Long.MAX_VALUE);
        int sectorSize = sectorSize(o);
        KdfOptions kdfOptions = KdfOptions.of(o, "argon2id", DEFAULT_MEMORY_KIB, 4);
        SecureRandom random = new SecureRandom();
        byte[] key = new byte[spec.keyBytes()];
        random.nextBytes(key);
        try {
            String encryption = spec.cipherName() + "-" + spec.headerMode();
            Luks2Metadata.Kdf kdf = kdfOptions.calibrate(hash, iterTime, spec.keyBytes(), random);
            long areaOffset = 2 * HDR_SIZE;
            long areaSize = ((long) spec.keyBytes() * STRIPES + 4095) / 4096 * 4096;
            Luks2Metadata.Keyslot slot = new Luks2Metadata.Keyslot(0, spec.keyBytes(), 1, STRIPES, hash, kdf,
                    areaOffset, areaSize, encryption, spec);
            Luks2Keys.lock(storage, slot, key, passphrase, random);

            // the digest gets an eighth of the slot's PBKDF2 time, as the LUKS1 master-key digest does
            long digestIterations = kdf instanceof Luks2Metadata.Kdf.Pbkdf2 p && p.hash() == hash
                    ? Math.max(MIN_ITERATIONS, p.iterations() / 8)
                    : Math.max(MIN_ITERATIONS, pbkdf2Iterations(hash, iterTime) / 8);
            byte[] digestSalt = new byte[32];
            random.nextBytes(digestSalt);
            // as long as the HMAC, as cryptsetup writes it (cryptsetup 2.6 takes any key against a longer one)
            byte[] digest = Pbkdf2.derive(hash, key, digestSalt, digestIterations, hash.length());
            String json = Luks2Json.write(metadata(slot, encryption, sectorSize, hash, digestIterations, digestSalt,
                    digest));
            String uuid = UUID.randomUUID().toString();
            for (long at : new long[] {0, HDR_SIZE}) {
                byte[] salt = new byte[Luks2Header.SALT_LENGTH];
                random.nextBytes(salt);
                storage.write(ByteBuffer.wrap(Luks2Header.encode(at, HDR_SIZE, 1, "", uuid, salt, json)), at);
            }
            // whole sectors, as QEMU rounds a LUKS1 payload up to 512 bytes: a guest disk of 1000 bytes is 4096
            storage.resize(DATA_OFFSET + (size + sectorSize - 1) / sectorSize * sectorSize,
                    LuksCreate.filePreallocation(options.preallocation()));
        } finally {
            Arrays.fill(key, (byte) 0);
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    private static Map<String, Object> metadata(Luks2Metadata.Keyslot slot, String encryption, int sectorSize,
            LuksHash hash, long digestIterations, byte[] digestSalt, byte[] digest) {
        Map<String, Object> segment = new LinkedHashMap<>();
        segment.put("type", "crypt");
        segment.put("offset", Long.toString(DATA_OFFSET));
        segment.put("size", "dynamic");
        segment.put("iv_tweak", "0");
        segment.put("encryption", encryption);
        segment.put("sector_size", (long) sectorSize);
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("type", "pbkdf2");
        d.put("keyslots", List.of("0"));
        d.put("segments", List.of("0"));
        d.put("hash", hash.luksName());
        d.put("iterations", digestIterations);
        d.put("salt", Base64.getEncoder().encodeToString(digestSalt));
        d.put("digest", Base64.getEncoder().encodeToString(digest));
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("json_size", Long.toString(HDR_SIZE - Luks2Header.BINARY_LENGTH));
        config.put("keyslots_size", Long.toString(DATA_OFFSET - 2 * HDR_SIZE));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("keyslots", Map.of("0", slot.toJson()));
        root.put("tokens", Map.of());
        root.put("segments", Map.of("0", segment));
        root.put("digests", Map.of("0", d));
        root.put("config", config);
        return root;
    }

    /**
     * The KDF options of a new key slot ({@code pbkdf}, {@code pbkdf-memory}, {@code pbkdf-parallel}), checked.
     *
     * @param name {@code argon2id}, {@code argon2i} or {@code pbkdf2}
     * @param memory Argon2's memory, KiB
     * @param lanes Argon2's lanes (cpus)
     */
    record KdfOptions(String name, long memory, long lanes) {
        /** The options' KDF choice, each missing one from the defaults given. */
        static KdfOptions of(Map<String, String> o, String name, long memory, long lanes) {
            String kdfName = o.getOrDefault("pbkdf", name);
            if (!List.of("argon2id", "argon2i", "pbkdf2").contains(kdfName)) {
                throw new IllegalArgumentException("Invalid parameter '" + kdfName + "' for pbkdf (argon2id, "
                        + "argon2i or pbkdf2)");
            }
            if (!kdfName.equals("pbkdf2") && !Argon2.available()) {
                throw new IllegalArgumentException("pbkdf=" + kdfName + " needs Bouncy Castle "
                        + "(org.bouncycastle:bcprov-jdk18on) on the module path; use pbkdf=pbkdf2 without it");
            }
            long kib = positive(o, "pbkdf-memory", memory, Luks2Keys.DEFAULT_MAX_MEMORY_KIB);
            long n = positive(o, "pbkdf-parallel", lanes, 4);
            if (kib < 8 * n) {
                throw new IllegalArgumentException("Parameter 'pbkdf-memory' must be at least 8 KiB per lane, not "
                        + kib);
            }
            return new KdfOptions(kdfName, kib, n);
        }

        /**
         * The KDF with a fresh salt, calibrated to about {@code iterTime} ms of this thread's CPU: PBKDF2's
         * iterations with {@code hash}, or Argon2's passes deriving a key of {@code keyBytes}.
         */
        Luks2Metadata.Kdf calibrate(LuksHash hash, long iterTime, int keyBytes, SecureRandom random) {
            byte[] salt = new byte[32];
            random.nextBytes(salt);
            if (name.equals("pbkdf2")) {
                return new Luks2Metadata.Kdf.Pbkdf2(hash, pbkdf2Iterations(hash, iterTime), salt);
            }
            Argon2.Type type = name.equals("argon2i") ? Argon2.Type.ARGON2I : Argon2.Type.ARGON2ID;
            return new Luks2Metadata.Kdf.Argon2(type, argon2Time(type, memory, (int) lanes, iterTime, keyBytes),
                    memory, lanes, salt);
        }
    }

    /** The PBKDF2 iterations of {@code hash} that take about {@code iterTime} ms here, 1000 to 2^32 - 1. */
    static long pbkdf2Iterations(LuksHash hash, long iterTime) {
        long perSecond = Pbkdf2.iterationsPerSecond(hash, Math.min(iterTime, 250));
        return Math.min(0xffffffffL, Math.max(MIN_ITERATIONS, perSecond * Math.min(iterTime, 1L << 20) / 1000));
    }

    /**
     * The Argon2 passes that take about {@code iterTime} ms of this thread's CPU at {@code memory} KiB, at least
     * four (cryptsetup's minimum): one timed pass, scaled.
     */
    private static long argon2Time(Argon2.Type type, long memory, int lanes, long iterTime, int length) {
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        boolean cpuTime = cpu.isCurrentThreadCpuTimeSupported();
        long start = cpuTime ? cpu.getCurrentThreadCpuTime() : System.nanoTime();
        Argon2.derive(type, new byte[8], new byte[32], 1, (int) memory, lanes, length);
        long nanos = Math.max(1, (cpuTime ? cpu.getCurrentThreadCpuTime() : System.nanoTime()) - start);
        long passes = Math.min(iterTime, 1L << 20) * 1_000_000L / nanos;
        return Math.max(MIN_ARGON2_TIME, Math.min(passes, 1L << 20));
    }

    private static long positive(Map<String, String> o, String name, long fallback, long max) {
        String text = o.get(name);
        if (text == null) {
            return fallback;
        }
        try {
            long n = Long.parseLong(text.trim().toLowerCase(Locale.ROOT));
            if (n > 0 && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("Parameter '" + name + "' expects a number from 1 to " + max + ", not '"
                + text + "'");
    }
}
