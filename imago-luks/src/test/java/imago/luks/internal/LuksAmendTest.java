package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Secrets;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code amend} of key slots as qemu-img 7.2 does it: a passphrase added and erased by imago is what cryptsetup
 * dumps and unlocks and what qemu-img opens; every refusal is qemu-img amend's message on the same image.
 */
class LuksAmendTest {
    private static final String SECRETS = "--object secret,id=sec0,data=abc --object secret,id=sec1,data=def "
            + "--object secret,id=sec2,data=ghi";

    @TempDir
    Path dir;

    private Path create() throws IOException {
        Path f = dir.resolve("a.luks");
        Files.deleteIfExists(f);
        Imago.create(f, "luks", CreateOptions.builder().size(1 << 20)
                .secrets(Secrets.create().put("sec0", "abc".toCharArray())).option("key-secret", "sec0")
                .option("iter-time", "10").build());
        return f;
    }

    private static Map<String, String> opts(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : text.split(",")) {
            m.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        }
        return m;
    }

    private static void amend(Path f, String unlock, String options, boolean force) throws IOException {
        try (Secrets s = Secrets.create()) {
            s.put("sec0", "abc".getBytes(StandardCharsets.UTF_8)).put("sec1", "def".getBytes(StandardCharsets.UTF_8))
                    .put("sec2", "ghi".getBytes(StandardCharsets.UTF_8));
            Imago.opener().path(f).format("luks").secrets(s).option("key-secret", unlock).amend(opts(options), force,
                    p -> { });
        }
    }

    private boolean cryptsetupUnlocks(Path f, String pass) throws IOException {
        Path key = dir.resolve("key");
        Files.writeString(key, pass);
        return Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file", key, f).status() == 0;
    }

    @Test
    void addAndEraseKeySlotsAsQemuImgAndCryptsetupSeeThem() throws IOException {
        Path f = create();
        amend(f, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        amend(f, "sec1", "state=active,new-secret=sec2,keyslot=5,iter-time=10", false);
        String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
        assertTrue(dump.contains("Key Slot 1: ENABLED") && dump.contains("Key Slot 5: ENABLED")
                && dump.contains("Key Slot 2: DISABLED"), dump);
        assertTrue(cryptsetupUnlocks(f, "def"));
        assertTrue(cryptsetupUnlocks(f, "ghi"));
        Qemu.ok(dir, Qemu.io(), "--object", "secret,id=s,data=ghi", "--image-opts",
                "driver=luks,key-secret=s,file.filename=" + f, "-c", "read 0 512");
        amend(f, "sec1", "state=inactive,old-secret=sec0", false);
        amend(f, "sec1", "state=inactive,keyslot=5", false);
        assertTrue(!cryptsetupUnlocks(f, "abc") && !cryptsetupUnlocks(f, "ghi") && cryptsetupUnlocks(f, "def"));
        String after = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
        assertTrue(after.contains("Key Slot 0: DISABLED") && after.contains("Key Slot 5: DISABLED"), after);
        // the only slot left goes only with --force
        IllegalArgumentException only = assertThrows(IllegalArgumentException.class,
                () -> amend(f, "sec1", "state=inactive,keyslot=1", false));
        assertTrue(only.getMessage().startsWith("Attempt to erase the only active keyslot 1"), only.getMessage());
        Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "--object", "secret,id=s,data=def", "--image-opts",
                "driver=luks,key-secret=s,file.filename=" + f);
        assertTrue(check.status() == 0 || check.err().contains("does not support checks"), check.err());
    }

    /**
     * Secrets handed to the opener itself ({@code Opener.secret}) last until the amend has read its new and old
     * secrets, and are wiped after it: the library's one-call amend, without a caller-owned {@link Secrets}.
     */
    @Test
    void amendReadsSecretsGivenToTheOpener() throws IOException {
        Path f = create();
        byte[] added = "def".getBytes(StandardCharsets.UTF_8);
        Imago.opener().path(f).format("luks").secret("sec0", "abc".getBytes(StandardCharsets.UTF_8))
                .secret("sec1", added).option("key-secret", "sec0")
                .amend(opts("state=active,new-secret=sec1,iter-time=10"), false, p -> { });
        assertTrue(cryptsetupUnlocks(f, "def") && cryptsetupUnlocks(f, "abc"));
    }

    /** Each refusal, on an image with slot 0 (sec0) and slot 1 (sec1), is qemu-img amend's message word for word. */
    @Test
    void refusalsAreQemuImgs() throws IOException {
        Path f = create();
        amend(f, "sec0", "state=active,new-secret=sec1,iter-time=10", false);
        String[] refused = {
            "new-secret=sec2", "state=foo", "state=active,new-secret=sec2,keyslot=1",
            "state=active,keyslot=2", "state=active,new-secret=sec2,keyslot=9", "state=active,new-secret=sec2,old-secret=sec0",
            "state=inactive,keyslot=3", "state=inactive,new-secret=sec1,keyslot=1", "state=inactive,iter-time=10", "state=inactive",
            "state=inactive,new-secret=sec1,iter-time=10", "state=active,keyslot=x,new-secret=sec2",
            "state=inactive,old-secret=sec2", "state=inactive,keyslot=1,old-secret=sec0", "cipher-alg=aes-128",
        };
        for (String o : refused) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> amend(f, "sec0", o, false),
                    o);
            Qemu.Output q = Qemu.run(dir, Qemu.img(), "amend", SECRETS.split(" ")[0], SECRETS.split(" ")[1],
                    SECRETS.split(" ")[2], SECRETS.split(" ")[3], SECRETS.split(" ")[4], SECRETS.split(" ")[5],
                    "--image-opts", "driver=luks,key-secret=sec0,file.filename=" + f, "-o", o);
            assertEquals(1, q.status(), o);
            assertEquals(q.err().strip(), "qemu-img: " + e.getMessage().strip(), o);
        }
        assertTrue(cryptsetupUnlocks(f, "abc") && cryptsetupUnlocks(f, "def"), "nothing changed");
    }
}
