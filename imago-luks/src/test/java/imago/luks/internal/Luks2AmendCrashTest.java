package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageException;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.api.spi.Amender;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.probe.Imago;
import imago.testkit.FaultStorage;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Power loss and write failures at every write and sync of a LUKS2 key-slot amend ({@link Luks2KeySlots},
 * {@link Luks2Commit}), on {@link FaultStorage}: each file a crash can leave (unsynced writes dropped, some torn
 * into sectors) opens, in imago and in cryptsetup alike, with exactly the old set of passphrases or the new one,
 * and its data reads as before under each. The headers amended include ones whose copies are not equal: an older
 * secondary copy (a previous update cut short) and a damaged primary, where writing the copy in use first would
 * let a torn write fall back to metadata older than the old.
 */
class Luks2AmendCrashTest {
    /** The passphrases of secrets sec0, sec1 and sec2. */
    private static final String[] PASS = {"abc", "def", "ghi"};
    private static final int HDR = 16384;
    /** After the two header copies and a 1 MiB key-slot area. */
    private static final int DATA_OFFSET = 2 * HDR + (1 << 20);
    /** The files each crash point leaves: enough that every write dropped or torn around each sync shows up. */
    private static final int VARIANTS = 12;

    @TempDir
    static Path dir;
    /** A LUKS2 container with data, slot 0 under sec0 and slot 1 under sec1. */
    private static byte[] twoSlots;
    /** The same container before slot 1 was added (its seqid one lower). */
    private static byte[] oneSlot;
    private static byte[] data;
    /** What cryptsetup made of each crash file, by its SHA-256. */
    private static final Map<String, Set<Integer>> CRYPTSETUP = new HashMap<>();

    /**
     * A small container, so that many crash files are cheap: cryptsetup's, with a 1 MiB key-slot area (room for
     * four 64-byte-key slots) and the data right after it; PBKDF2 slots, so that each unlock is quick.
     */
    @BeforeAll
    static void images() throws IOException {
        Path f = dir.resolve("orig.luks");
        Files.write(f, new byte[DATA_OFFSET + 64 * 1024]);
        Path key = dir.resolve("key");
        Files.writeString(key, PASS[0]);
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", key,
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--luks2-keyslots-size", "1048576",
                "--offset", Integer.toString(DATA_OFFSET / 512), f);
        data = new byte[64 * 1024];
        new Random(7).nextBytes(data);
        try (Image i = Imago.opener().path(f).format("luks").writable(true).secrets(secrets())
                .option("key-secret", "sec0").open()) {
            i.write(ByteBuffer.wrap(data), 0);
        }
        oneSlot = Files.readAllBytes(f);
        Path added = dir.resolve("added");
        Files.writeString(added, PASS[1]);
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksAddKey", "--batch-mode", "--key-file", key, "--pbkdf", "pbkdf2",
                "--pbkdf-force-iterations", "1000", f, added);
        twoSlots = Files.readAllBytes(f);
    }

    private static Secrets secrets() {
        Secrets s = Secrets.create();
        for (int i = 0; i < PASS.length; i++) {
            s.put("sec" + i, PASS[i].getBytes(StandardCharsets.UTF_8));
        }
        return s;
    }

    private static FormatInstance open(Storage s, String secret, boolean writable) throws IOException {
        return new LuksFormatDriver().open(s, new OpenContext(writable, false, Map.of("key-secret", secret),
                secrets()));
    }

    private static void amend(Storage s, String options) throws IOException {
        try (FormatInstance layer = open(s, "sec0", true)) {
            layer.capability(Amender.class).orElseThrow().amend(Luks2AmendTest.opts(options), false, p -> { },
                    size -> {
                        throw new AssertionError("no resize");
                    });
        }
    }

    /** The passphrases (by index) that open {@code file} in imago; each one reads the original data. */
    private static Set<Integer> imagoKeys(byte[] file, String what) throws IOException {
        Set<Integer> keys = new TreeSet<>();
        for (int k = 0; k < PASS.length; k++) {
            FaultStorage s = FaultStorage.of(StorageLocation.memory("crash"), file);
            try (FormatInstance layer = open(s, "sec" + k, false);
                    Image image = LayeredImage.builder("luks", layer, s).build()) {
                assertArrayEquals(data, LuksQemuTest.readAll(image), what + ": data under " + PASS[k]);
                keys.add(k);
            } catch (ImageException e) {
                assertTrue(e.getMessage().contains("Invalid password, cannot unlock any keyslot"), () -> what + ": "
                        + e.getMessage());
            }
        }
        return keys;
    }

    /**
     * The passphrases (by index) that open {@code file} in cryptsetup, remembered by content: most crash files are
     * the old or the new file again.
     */
    private static Set<Integer> cryptsetupKeys(byte[] file) throws IOException {
        String sum;
        try {
            sum = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(file));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        Set<Integer> known = CRYPTSETUP.get(sum);
        if (known != null) {
            return known;
        }
        // cryptsetup repairs a damaged or older copy in place (from the one it uses): a file of its own
        Path f = dir.resolve("crash.luks");
        Files.write(f, file);
        Set<Integer> keys = new TreeSet<>();
        for (int k = 0; k < PASS.length; k++) {
            Path key = dir.resolve("key");
            Files.writeString(key, PASS[k]);
            if (Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file", key, f)
                    .status() == 0) {
                keys.add(k);
            }
        }
        CRYPTSETUP.put(sum, keys);
        return keys;
    }

    /**
     * Amends {@code original} once per crash point and checks every file each crash leaves: imago and cryptsetup
     * find the old passphrases or the new ones, never anything else; both outcomes occur.
     */
    private static void crashMatrix(byte[] original, String options, Set<Integer> before, Set<Integer> after)
            throws IOException {
        int total = Integer.MAX_VALUE;
        int olds = 0;
        int news = 0;
        int torn = FaultStorage.tornFiles();
        long oldSeqid = Luks2Header.read(FaultStorage.of(StorageLocation.memory("h"), original)).seqid();
        for (int crashAt = -1; crashAt < total; crashAt++) {
            FaultStorage s = FaultStorage.of(StorageLocation.memory("amend"), original);
            s.crashAt(crashAt, VARIANTS);
            amend(s, options);
            if (s.crashFiles().isEmpty()) {
                total = s.points();
                assertTrue(total >= 6, "material, two header copies, each synced: " + total);
                assertEquals(after, imagoKeys(s.content(), options + " done"));
                continue;
            }
            int variant = 0;
            for (byte[] crashed : s.crashFiles()) {
                String what = options + ", crash at " + crashAt + " of " + total + ", variant " + variant++;
                Set<Integer> keys = imagoKeys(crashed, what);
                assertTrue(keys.equals(before) || keys.equals(after), what + ": imago opens with " + keys
                        + ", neither " + before + " nor " + after);
                // the header names the new slots only once their material is there (erased material may go first)
                long seqid = Luks2Header.read(FaultStorage.of(StorageLocation.memory("h"), crashed)).seqid();
                assertTrue(seqid == oldSeqid || keys.equals(after), what + ": the new header without the new keys");
                assertEquals(keys, cryptsetupKeys(crashed), what + ": cryptsetup agrees");
                if (keys.equals(after)) {
                    news++;
                } else {
                    olds++;
                }
            }
        }
        assertTrue(olds > 0 && news > 0, options + ": " + olds + " old, " + news + " new");
        assertTrue(FaultStorage.tornFiles() > torn, "some crash files had a torn write");
    }

    @Test
    void addingASlotLeavesTheOldKeysOrTheNew() throws IOException {
        crashMatrix(twoSlots, "state=active,new-secret=sec2,iter-time=1", Set.of(0, 1), Set.of(0, 1, 2));
    }

    @Test
    void erasingBySecretLeavesTheOldKeysOrTheNew() throws IOException {
        crashMatrix(twoSlots, "state=inactive,old-secret=sec1", Set.of(0, 1), Set.of(0));
    }

    @Test
    void erasingBySlotLeavesTheOldKeysOrTheNew() throws IOException {
        crashMatrix(twoSlots, "state=inactive,keyslot=1", Set.of(0, 1), Set.of(0));
    }

    /**
     * The secondary copy is one update behind (one slot) and the primary wins (a higher seqid): the secondary must
     * be overwritten first, or a torn primary would bring back the one-slot metadata.
     */
    @Test
    void anOlderSecondaryCopyIsOverwrittenFirst() throws IOException {
        byte[] stale = twoSlots.clone();
        System.arraycopy(oneSlot, HDR, stale, HDR, HDR);
        crashMatrix(stale, "state=active,new-secret=sec2,iter-time=1", Set.of(0, 1), Set.of(0, 1, 2));
    }

    /** A damaged primary: the secondary is the copy in use, so the primary is written first. */
    @Test
    void aDamagedPrimaryCopyIsOverwrittenFirst() throws IOException {
        byte[] damaged = twoSlots.clone();
        damaged[5000] ^= 1;
        crashMatrix(damaged, "state=inactive,keyslot=0", Set.of(0, 1), Set.of(1));
    }

    /** A write that fails leaves the old keys or the new ones too, and the next amend goes on from there. */
    @Test
    void aFailedWriteLeavesTheOldKeysOrTheNew() throws IOException {
        for (int writes = 0; ; writes++) {
            FaultStorage s = FaultStorage.of(StorageLocation.memory("failing"), twoSlots);
            s.failAfter(writes);
            IOException e;
            try {
                amend(s, "state=active,new-secret=sec2,iter-time=1");
                assertTrue(writes >= 3, "material and two header copies: " + writes);
                assertEquals(Set.of(0, 1, 2), imagoKeys(s.content(), "no failure"));
                return;
            } catch (IOException failed) {
                e = failed;
            }
            assertTrue(s.failing(), e::toString);
            s.heal();
            Set<Integer> keys = imagoKeys(s.content(), "failure after " + writes + " writes");
            assertTrue(keys.equals(Set.of(0, 1)) || keys.equals(Set.of(0, 1, 2)), writes + ": " + keys);
            if (keys.equals(Set.of(0, 1))) {
                amend(s, "state=active,new-secret=sec2,iter-time=1");
            }
            assertEquals(Set.of(0, 1, 2), imagoKeys(s.content(), "amended again after " + writes));
        }
    }

    @Test
    void nothingIsWrittenWhenTheAmendIsRefused() {
        FaultStorage s = FaultStorage.of(StorageLocation.memory("refused"), twoSlots);
        s.crashAt(Integer.MAX_VALUE, 1);
        assertThrows(IllegalArgumentException.class, () -> amend(s, "state=inactive,keyslot=7"));
        assertThrows(IllegalArgumentException.class, () -> amend(s, "state=active,new-secret=sec2,pbkdf=none"));
        assertEquals(0, s.points());
    }
}
