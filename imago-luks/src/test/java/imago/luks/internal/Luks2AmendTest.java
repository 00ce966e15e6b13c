package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Secrets;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code amend} of LUKS2 key slots against cryptsetup 2.6 (files, no device mapper): a slot imago adds is where
 * {@code cryptsetup luksAddKey} would put it, with the same kind of KDF, and cryptsetup takes its passphrase and
 * still the old ones; a slot imago erases is gone for cryptsetup, its area overwritten; slots cryptsetup added are
 * imago's to use and erase; tokens survive as cryptsetup keeps them; every refusal is the LUKS1 path's (qemu-img's)
 * word for word, and changes nothing.
 */
class Luks2AmendTest {
    /** The passphrases of secrets sec0, sec1, sec2 and sec3. */
    private static final String[] PASS = {"abc", "def", "ghi", "jkl"};

    @TempDir
    Path dir;

    private Path keyFile(String text) throws IOException {
        Path key = dir.resolve("key-" + text);
        Files.writeString(key, text);
        return key;
    }

    private static Secrets secrets() {
        Secrets s = Secrets.create();
        for (int i = 0; i < PASS.length; i++) {
            s.put("sec" + i, PASS[i].getBytes(StandardCharsets.UTF_8));
        }
        return s;
    }

    static Map<String, String> opts(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : text.split(",")) {
            m.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        return m;
    }

    private static void amend(Path f, String unlock, String options, boolean force) throws IOException {
        try (Secrets s = secrets()) {
            Imago.opener().path(f).format("luks").secrets(s).option("key-secret", unlock).amend(opts(options), force,
                    p -> { });
        }
    }

    private static Image open(Path f, String pass) throws IOException {
        return Imago.opener().path(f).format("luks").secret("s", pass.getBytes(StandardCharsets.UTF_8))
                .option("key-secret", "s").open();
    }

    private boolean cryptsetupUnlocks(Path f, String pass) throws IOException {
        return Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file", keyFile(pass), f)
                .status() == 0;
    }

    private static boolean imagoUnlocks(Path f, String pass) throws IOException {
        try (Image i = open(f, pass)) {
            return i.size() > 0;
        } catch (ImageException e) {
            assertTrue(e.getMessage().contains("Invalid password, cannot unlock any keyslot")
                    || e.getMessage().contains("no usable key slot"), e.getMessage());
            return false;
        }
    }

    /** The header's JSON metadata as cryptsetup reads it. */
    @SuppressWarnings("unchecked")
    private Map<String, Object> json(Path f) throws Exception {
        return (Map<String, Object>) Luks2Json.parse(Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump",
                "--dump-json-metadata", f).strip());
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> at(Map<String, Object> m, String... path) {
        Map<String, Object> o = m;
        for (String p : path) {
            o = (Map<String, Object>) o.get(p);
        }
        return o;
    }

    /** An imago LUKS2 container holding random data, slot 0 under sec0. */
    private Path imagoImage(String name, String... options) throws IOException {
        Path f = dir.resolve(name);
        CreateOptions.Builder b = CreateOptions.builder().size(1 << 20).secrets(secrets()).option("key-secret", "sec0")
                .option("iter-time", "10").option("luks-version", "2");
        for (String kv : options) {
            b.option(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        Imago.create(f, "luks", b.build());
        try (Image i = Imago.opener().path(f).format("luks").writable(true).secrets(secrets())
                .option("key-secret", "sec0").open()) {
            i.write(ByteBuffer.wrap(data()), 0);
        }
        return f;
    }

    private static byte[] data() {
        byte[] d = new byte[1 << 20];
        new Random(19).nextBytes(d);
        return d;
    }

    private static byte[] bytes(Path f, long offset, int length) throws IOException {
        byte[] b = new byte[length];
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "r")) {
            raf.seek(offset);
            raf.readFully(b);
        }
        return b;
    }

    private Path cryptsetupImage(String name, String... options) throws IOException {
        Path f = dir.resolve(name);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(18L << 20);
        }
        List<Object> cmd = new ArrayList<>(List.of(Qemu.tool("cryptsetup"), "luksFormat", "--type", "luks2",
                "--batch-mode", "--key-file", keyFile(PASS[0])));
        cmd.addAll(List.of(options));
        cmd.add(f);
        Qemu.ok(dir, cmd.toArray());
        return f;
    }

    private void cryptsetupAddKey(Path f, String pass, String newPass, String... options) throws IOException {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.tool("cryptsetup"), "luksAddKey", "--batch-mode",
                "--key-file", keyFile(pass)));
        cmd.addAll(List.of(options));
        cmd.add(f);
        cmd.add(keyFile(newPass));
        Qemu.ok(dir, cmd.toArray());
    }

    @Test
    void imagoAddsAndErasesSlotsWhereCryptsetupWould() throws Exception {
        Path f = imagoImage("a.luks", "pbkdf=pbkdf2");
        Path twin = dir.resolve("twin.luks");
        Files.copy(f, twin);
        amend(f, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        cryptsetupAddKey(twin, PASS[0], PASS[1], "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000");
        Map<String, Object> mine = json(f);
        Map<String, Object> theirs = json(twin);
        // the same area, cipher, anti-forensic split and KDF kind as cryptsetup's own new slot
        assertEquals(at(theirs, "keyslots", "1", "area"), at(mine, "keyslots", "1", "area"));
        assertEquals(at(theirs, "keyslots", "1", "af"), at(mine, "keyslots", "1", "af"));
        assertEquals(at(theirs, "keyslots", "1", "kdf").get("type"), at(mine, "keyslots", "1", "kdf").get("type"));
        assertEquals(at(theirs, "keyslots", "1", "kdf").get("hash"), at(mine, "keyslots", "1", "kdf").get("hash"));
        assertEquals(at(theirs, "digests", "0").get("keyslots"), at(mine, "digests", "0").get("keyslots"));
        assertEquals(theirs.keySet(), mine.keySet());
        assertTrue(cryptsetupUnlocks(f, PASS[0]) && cryptsetupUnlocks(f, PASS[1]) && !cryptsetupUnlocks(f, PASS[2]));

        amend(f, "sec1", "state=active,new-secret=sec2,keyslot=5,iter-time=10", false);
        assertEquals("548864", at(json(f), "keyslots", "5", "area").get("offset"), "the next gap");
        assertTrue(cryptsetupUnlocks(f, PASS[2]));

        byte[] slot0 = bytes(f, 32768, 258048);
        amend(f, "sec1", "state=inactive,old-secret=sec0", false);
        assertTrue(!cryptsetupUnlocks(f, PASS[0]) && cryptsetupUnlocks(f, PASS[1]) && cryptsetupUnlocks(f, PASS[2]));
        assertTrue(!imagoUnlocks(f, PASS[0]) && imagoUnlocks(f, PASS[1]));
        byte[] wiped = bytes(f, 32768, 258048);
        for (int s = 0; s < wiped.length; s += 512) {
            assertTrue(!Arrays.equals(slot0, s, s + 512, wiped, s, s + 512), "sector " + s / 512 + " wiped");
        }
        assertEquals(List.of("1", "5"), List.copyOf(at(json(f), "keyslots").keySet()));

        // the first gap again: slot 0's old place
        amend(f, "sec2", "state=active,new-secret=sec3,iter-time=10", false);
        assertEquals("32768", at(json(f), "keyslots", "0", "area").get("offset"));
        amend(f, "sec1", "state=inactive,keyslot=5", false);
        assertTrue(cryptsetupUnlocks(f, PASS[3]) && cryptsetupUnlocks(f, PASS[1]) && !cryptsetupUnlocks(f, PASS[2]));
        String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
        assertTrue(dump.contains("Epoch:         \t6"), dump);
        try (Image i = open(f, PASS[3])) {
            assertArrayEquals(data(), LuksQemuTest.readAll(i), "the data stays under the same volume key");
            assertEquals(6L, i.info().formatSpecific().get("seqid"));
        }
    }

    @Test
    void slotsCryptsetupAddedAreImagosToUseAndEraseAndTheKdfMatches() throws Exception {
        Path f = cryptsetupImage("cs.luks", "--pbkdf", "argon2id", "--pbkdf-memory", "1024",
                "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "2");
        cryptsetupAddKey(f, PASS[0], PASS[1], "--pbkdf", "argon2id", "--pbkdf-memory", "1024",
                "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "2");
        amend(f, "sec1", "state=active,new-secret=sec2,iter-time=10", false);
        Map<String, Object> kdf = at(json(f), "keyslots", "2", "kdf");
        assertEquals("argon2id", kdf.get("type"));
        assertEquals(1024L, kdf.get("memory"));
        assertEquals(2L, kdf.get("cpus"));
        assertTrue((Long) kdf.get("time") >= 4);
        assertTrue(cryptsetupUnlocks(f, PASS[2]) && cryptsetupUnlocks(f, PASS[0]));
        // cryptsetup's slot 1, erased by its passphrase
        amend(f, "sec2", "state=inactive,old-secret=sec1", false);
        assertTrue(!cryptsetupUnlocks(f, PASS[1]) && !imagoUnlocks(f, PASS[1]) && imagoUnlocks(f, PASS[0]));
        // and cryptsetup goes on from imago's header: adds a slot, kills imago's
        cryptsetupAddKey(f, PASS[2], PASS[3], "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000");
        assertEquals("290816", at(json(f), "keyslots", "1", "area").get("offset"),
                "cryptsetup fills the gap imago left");
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksKillSlot", "--batch-mode", f, "2");
        assertTrue(!imagoUnlocks(f, PASS[2]) && imagoUnlocks(f, PASS[3]));
        // an explicit KDF: PBKDF2 beside the Argon2 slots
        amend(f, "sec0", "state=active,new-secret=sec2,pbkdf=pbkdf2,iter-time=10", false);
        assertEquals("pbkdf2", at(json(f), "keyslots", "2", "kdf").get("type"));
        assertTrue(cryptsetupUnlocks(f, PASS[2]));
    }

    @Test
    void tokensAreKeptAsCryptsetupKeepsThem() throws Exception {
        Path f = cryptsetupImage("t.luks", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000");
        cryptsetupAddKey(f, PASS[0], PASS[1], "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000");
        Path token = dir.resolve("token.json");
        Files.writeString(token, "{\"type\":\"imago-test\",\"keyslots\":[\"1\"],\"x\":{\"y\":[1,\"z\"]}}");
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "token", "import", "--json-file", token, f);
        Files.writeString(token, "{\"type\":\"other\",\"keyslots\":[\"0\",\"1\"]}");
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "token", "import", "--json-file", token, f);
        Map<String, Object> tokens = at(json(f), "tokens");
        try (Image i = Imago.opener().path(f).format("luks").metadataOnly(true).open()) {
            assertEquals(2, i.info().formatSpecific().get("luks-version"));
        }
        assertTrue(imagoUnlocks(f, PASS[1]), "tokens are not used to unlock, and do not stop a passphrase");
        amend(f, "sec0", "state=active,new-secret=sec2,iter-time=10", false);
        assertEquals(tokens, at(json(f), "tokens"));
        assertTrue(cryptsetupUnlocks(f, PASS[2]));

        Path twin = dir.resolve("twin.luks");
        Files.copy(f, twin);
        amend(f, "sec0", "state=inactive,keyslot=1", false);
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksKillSlot", "--batch-mode", twin, "1");
        assertEquals(at(json(twin), "tokens"), at(json(f), "tokens"), "the token stays, without slot 1");
        assertEquals(at(json(twin), "digests", "0").get("keyslots"), at(json(f), "digests", "0").get("keyslots"));
        assertTrue(!cryptsetupUnlocks(f, PASS[1]) && cryptsetupUnlocks(f, PASS[0]));
        // the last slot goes only with --force, and leaves what cryptsetup leaves: no slot, the digest, the tokens
        amend(f, "sec0", "state=inactive,keyslot=2", false);
        IllegalArgumentException last = assertThrows(IllegalArgumentException.class,
                () -> amend(f, "sec0", "state=inactive,old-secret=sec0", false));
        assertTrue(last.getMessage().startsWith("All the active keyslots match"), last.getMessage());
        amend(f, "sec0", "state=inactive,old-secret=sec0", true);
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksKillSlot", "--batch-mode", twin, "2");
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksKillSlot", "--batch-mode", twin, "0");
        Map<String, Object> mine = json(f);
        Map<String, Object> theirs = json(twin);
        assertEquals(theirs.get("keyslots"), mine.get("keyslots"));
        assertEquals(theirs.get("tokens"), mine.get("tokens"));
        assertEquals(theirs.get("digests"), mine.get("digests"));
        assertTrue(!imagoUnlocks(f, PASS[0]));
    }

    /**
     * A key slot bound to no data segment ({@code luksAddKey --unbound}) holds no key of the data: it does not open
     * the image, erasing the one bound slot beside it is the last slot's refusal, and its passphrase erases it
     * (with its digest, as cryptsetup drops it).
     */
    @Test
    void anUnboundKeyIsNotTheDataKey() throws Exception {
        Path f = cryptsetupImage("u.luks", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000");
        cryptsetupAddKey(f, PASS[0], PASS[1], "--unbound", "--key-size", "512", "--pbkdf", "pbkdf2",
                "--pbkdf-force-iterations", "1000");
        assertTrue(!imagoUnlocks(f, PASS[1]) && imagoUnlocks(f, PASS[0]));
        IllegalArgumentException only = assertThrows(IllegalArgumentException.class,
                () -> amend(f, "sec0", "state=inactive,keyslot=0", false));
        assertTrue(only.getMessage().startsWith("Attempt to erase the only active keyslot 0"), only.getMessage());
        Path twin = dir.resolve("twin.luks");
        Files.copy(f, twin);
        amend(f, "sec0", "state=inactive,old-secret=sec1", false);
        Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksKillSlot", "--batch-mode", twin, "1");
        assertEquals(json(twin).get("digests"), json(f).get("digests"));
        assertEquals(json(twin).get("keyslots"), json(f).get("keyslots"));
        assertTrue(cryptsetupUnlocks(f, PASS[0]) && !cryptsetupUnlocks(f, PASS[1]));
    }

    /**
     * Every refusal on a LUKS2 container (slots 0 and 1) is the LUKS1 path's on a LUKS1 container with the same
     * slots (whose words {@link LuksAmendTest} proves qemu-img's), but for the slot range (32 slots), and neither
     * container changes. LUKS2's own refusals: KDF options when erasing, a bad KDF, create-only options, a full
     * key-slot area.
     */
    @Test
    void refusalsAreTheLuks1PathsAndChangeNothing() throws Exception {
        Path v2 = imagoImage("r2.luks", "pbkdf=pbkdf2");
        amend(v2, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        Path v1 = dir.resolve("r1.luks");
        Imago.create(v1, "luks", CreateOptions.builder().size(1 << 20).secrets(secrets()).option("key-secret", "sec0")
                .option("iter-time", "10").build());
        amend(v1, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        byte[] before2 = Files.readAllBytes(v2);
        byte[] before1 = Files.readAllBytes(v1);
        String[] refused = {
            "new-secret=sec2", "state=foo", "state=active,new-secret=sec2,keyslot=1",
            "state=active,keyslot=2", "state=active,new-secret=sec2,keyslot=40",
            "state=active,new-secret=sec2,old-secret=sec0", "state=inactive,keyslot=3",
            "state=inactive,new-secret=sec1,keyslot=1", "state=inactive,iter-time=10", "state=inactive",
            "state=inactive,new-secret=sec1,iter-time=10", "state=active,keyslot=x,new-secret=sec2",
            "state=inactive,old-secret=sec2", "state=inactive,keyslot=1,old-secret=sec0", "cipher-alg=aes-128",
            "state=active,new-secret=nosuch", "state=active,new-secret=sec2,iter-time=0", "state=inactive,keyslot=-1",
        };
        for (String o : refused) {
            IllegalArgumentException one = assertThrows(IllegalArgumentException.class, () -> amend(v1, "sec0", o,
                    false), o);
            IllegalArgumentException two = assertThrows(IllegalArgumentException.class, () -> amend(v2, "sec0", o,
                    false), o);
            assertEquals(one.getMessage().replace("between 0 and 7", "between 0 and 31"), two.getMessage(), o);
        }
        String[][] own = {
            {"state=inactive,keyslot=1,pbkdf=pbkdf2", "'pbkdf' must not be given when erasing keyslots"},
            {"state=active,new-secret=sec2,pbkdf=scrypt", "Invalid parameter 'scrypt' for pbkdf"},
            {"state=active,new-secret=sec2,pbkdf-memory=0", "Parameter 'pbkdf-memory' expects a number"},
            {"state=active,new-secret=sec2,sector-size=4096", "Invalid parameter 'sector-size'\nThis option is only "
                + "supported for image creation"},
        };
        for (String[] o : own) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> amend(v2, "sec0", o[0],
                    false), o[0]);
            assertTrue(e.getMessage().startsWith(o[1]), e.getMessage());
        }
        // the LUKS1 path knows none of LUKS2's options, as qemu-img
        assertEquals("Invalid parameter 'pbkdf'", assertThrows(IllegalArgumentException.class,
                () -> amend(v1, "sec0", "state=active,new-secret=sec2,pbkdf=pbkdf2", false)).getMessage());
        assertArrayEquals(before2, Files.readAllBytes(v2), "LUKS2 unchanged");
        assertArrayEquals(before1, Files.readAllBytes(v1), "LUKS1 unchanged");

        // a key-slot area with room for two 64-byte-key slots, as cryptsetup's own add finds it full
        Path small = cryptsetupImage("small.luks", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                "--luks2-keyslots-size", "532480");
        amend(small, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        byte[] full = Files.readAllBytes(small);
        IllegalArgumentException room = assertThrows(IllegalArgumentException.class,
                () -> amend(small, "sec0", "state=active,new-secret=sec2,iter-time=10", false));
        assertTrue(room.getMessage().startsWith("Can't add a keyslot - the LUKS2 key-slot area (532480 bytes) has no "
                + "room left"), room.getMessage());
        assertArrayEquals(full, Files.readAllBytes(small));
        assertNotEquals(0, Qemu.run(dir, Qemu.tool("cryptsetup"), "luksAddKey", "--batch-mode", "--key-file",
                keyFile(PASS[0]), "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", small, keyFile(PASS[2]))
                .status(), "cryptsetup finds no room either");
    }
}
