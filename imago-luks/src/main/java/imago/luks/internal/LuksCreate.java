package imago.luks.internal;

import imago.api.CreateOptions;
import imago.api.ImageLimitException;
import imago.api.Measurement;
import imago.api.Preallocation;
import imago.api.spi.Storage;
import imago.luks.crypto.LuksHash;
import imago.luks.crypto.Pbkdf2;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.UUID;

/**
 * Writes a new LUKS1 container as qemu-img lays it out: the header, eight key slots of 4000 stripes each starting
 * at 4 KiB and aligned to 4 KiB, slot 0 holding a new random master key under the passphrase, the payload after the
 * last slot; PBKDF2 iterations calibrated to {@code iter-time} milliseconds (the digest an eighth of a slot's, both
 * at least 1000).
 */
final class LuksCreate {
    /** qemu-img's luks create options, in its order. */
    static final List<String> OPTIONS = List.of("key-secret", "cipher-alg", "cipher-mode", "ivgen-alg",
            "ivgen-hash-alg", "hash-alg", "iter-time");
    private static final long MIN_ITERATIONS = 1000;
    private static final long SLOT_ALIGNMENT_SECTORS = 4096 / LuksHeader.SECTOR;
    private static final long DEFAULT_ITER_TIME = 2000;

    private LuksCreate() {
    }

    /**
     * Refuses {@code options} as {@link #create} would, before anything is written (qemu-img refuses them before it
     * makes the file).
     *
     * @throws IllegalArgumentException if an option is unknown or invalid (qemu-img's messages)
     */
    static void check(CreateOptions options) {
        LuksCreateChecks.check(options, OPTIONS, LuksCreate::checkOwn);
    }

    static void create(Storage storage, CreateOptions options) throws IOException {
        byte[] passphrase = LuksCreateChecks.passphrase(options, OPTIONS, LuksCreate::checkOwn);
        Map<String, String> o = options.formatOptions();
        LuksCipherSpec spec = LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"),
                o.get("ivgen-alg"), o.get("ivgen-hash-alg"));
        LuksHash hash = LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        long iterTime = iterTime(o.get("iter-time"));
        byte[] key = null;
        try {
            long end = payloadSector(spec) * LuksHeader.SECTOR + LuksHeader.SECTOR - 1;
            if (options.size().getAsLong() > Long.MAX_VALUE - end) {
                // qemu-img's words for a file larger than a file can be (its EFBIG)
                throw new ImageLimitException(storage.name(), "The requested file size is too large");
            }
            key = writeHeader(storage, spec, hash, iterTime, passphrase);
            // whole sectors, where qemu-img ends the file at the byte the size asks for: a last sector the file holds
            // only in part is not written atomically (a power loss can keep a rewrite of its bytes inside the file
            // and lose the file's growth past them, leaving the sector undecryptable); the guest sees the same size
            long payload = payloadSector(spec) * LuksHeader.SECTOR;
            long size = options.size().getAsLong();
            storage.resize(payload + (size + LuksHeader.SECTOR - 1) / LuksHeader.SECTOR * LuksHeader.SECTOR,
                    filePreallocation(options.preallocation()));
        } finally {
            if (key != null) {
                Arrays.fill(key, (byte) 0);
            }
            Arrays.fill(passphrase, (byte) 0);
        }
    }

    /** LUKS1's own value check, after the cipher's: {@code iter-time}. */
    private static void checkOwn(Map<String, String> o) {
        iterTime(o.get("iter-time"));
    }

    /** The file's preallocation: QEMU takes {@code metadata} as {@code off}, a container having no metadata to make. */
    static Preallocation filePreallocation(Preallocation mode) {
        return mode == Preallocation.METADATA ? Preallocation.OFF : mode;
    }

    /**
     * Writes a new header with a random master key in slot 0 under {@code passphrase} at the start of
     * {@code storage} (its key slots after it, up to {@link #payloadSector}), and returns the master key, which the
     * caller wipes. Shared by the {@code luks} format and the LUKS headers other formats embed (qcow2).
     */
    static byte[] writeHeader(Storage storage, LuksCipherSpec spec, LuksHash hash, long iterTime, byte[] passphrase)
            throws IOException {
        SecureRandom random = new SecureRandom();
        byte[] key = new byte[spec.keyBytes()];
        random.nextBytes(key);
        boolean done = false;
        try {
            long slotIterations = calibrated(hash, iterTime);
            long digestIterations = Math.max(MIN_ITERATIONS, slotIterations / 8);
            slotIterations = Math.min(slotIterations, 0xffffffffL);
            long slotSectors = slotSectors(spec);
            List<LuksKeySlot> slots = new ArrayList<>();
            for (int i = 0; i < LuksHeader.SLOT_COUNT; i++) {
                slots.add(new LuksKeySlot(false, 0, new byte[LuksHeader.SALT_LENGTH],
                        SLOT_ALIGNMENT_SECTORS + i * slotSectors, LuksHeader.STRIPES));
            }
            long payloadSector = payloadSector(spec);
            byte[] salt = new byte[LuksHeader.SALT_LENGTH];
            random.nextBytes(salt);
            byte[] digest = Pbkdf2.derive(hash, key, salt, digestIterations, LuksHeader.DIGEST_LENGTH);
            LuksHeader header = new LuksHeader(spec, hash, payloadSector, digest, salt, digestIterations,
                    UUID.randomUUID().toString(), List.copyOf(slots));
            LuksKeySlot slot0 = LuksKeys.lock(storage, header, slots.getFirst(), key, passphrase, slotIterations,
                    random);
            header = header.withSlot(0, slot0);
            ByteBuffer b = ByteBuffer.allocate(LuksHeader.LENGTH);
            header.writeTo(b);
            storage.write(b.clear(), 0);
            done = true;
            return key;
        } finally {
            if (!done) {
                Arrays.fill(key, (byte) 0);
            }
        }
    }

    /** PBKDF2 iterations of {@code hash} that take about {@code iterTime} ms here, at least 1000 (not capped). */
    static long calibrated(LuksHash hash, long iterTime) {
        long perSecond = Pbkdf2.iterationsPerSecond(hash, Math.min(iterTime, 250));
        return Math.max(MIN_ITERATIONS, saturatingMultiply(perSecond, iterTime) / 1000);
    }

    /** The sectors each key slot takes: its material, rounded up to 4 KiB. */
    private static long slotSectors(LuksCipherSpec spec) {
        return (LuksHeader.materialSectors(spec.keyBytes()) + SLOT_ALIGNMENT_SECTORS - 1) / SLOT_ALIGNMENT_SECTORS
                * SLOT_ALIGNMENT_SECTORS;
    }

    /** Where a new container's payload starts, in sectors: after the header's 4 KiB and the eight slots. */
    static long payloadSector(LuksCipherSpec spec) {
        return SLOT_ALIGNMENT_SECTORS + LuksHeader.SLOT_COUNT * slotSectors(spec);
    }

    /**
     * {@code qemu-img measure -O luks}: the payload offset plus the size, allocated or not (the header and slots
     * are always written, the payload is the guest disk).
     *
     * @throws IllegalArgumentException if an option is invalid, or {@code key-secret} is missing (as qemu-img)
     */
    static Measurement measure(CreateOptions options, long size) {
        Map<String, String> o = options.formatOptions();
        LuksCreateChecks.measurable(o, OPTIONS);
        LuksCipherSpec spec = LuksCipherSpec.fromOptions(o.get("cipher-alg"), o.get("cipher-mode"),
                o.get("ivgen-alg"), o.get("ivgen-hash-alg"));
        LuksCipherSpec.pbkdfHash(o.get("hash-alg"));
        long total = payloadSector(spec) * LuksHeader.SECTOR + size;
        return new Measurement(total, total, OptionalLong.empty());
    }

    static long iterTime(String text) {
        if (text == null) {
            return DEFAULT_ITER_TIME;
        }
        try {
            long ms = Long.parseLong(text);
            if (ms > 0) {
                return ms;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("Parameter 'iter-time' expects a positive number of milliseconds, not '"
                + text + "'");
    }

    private static long saturatingMultiply(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        return hi != 0 || a * b < 0 ? Long.MAX_VALUE : a * b;
    }

    /** The option names {@link #create} takes. */
    static Set<String> names() {
        return Set.copyOf(OPTIONS);
    }
}
