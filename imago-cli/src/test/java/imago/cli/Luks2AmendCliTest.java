package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code imago amend} of LUKS2 key slots through the command (beyond qemu-img 7.2, which cannot open LUKS2): the
 * same {@code --object secret} and {@code -o state=...} as for LUKS1, checked with cryptsetup 2.6, and a refusal in
 * the LUKS1 path's words.
 */
class Luks2AmendCliTest {
    private static final String[] SECRETS = {"--object", "secret,id=sec0,data=abc", "--object",
        "secret,id=sec1,data=def"};

    @TempDir
    Path dir;

    private boolean cryptsetupUnlocks(Path f, String pass) throws IOException {
        Path key = dir.resolve("key");
        Files.writeString(key, pass);
        return Qemu.run(dir, Qemu.tool("cryptsetup"), "open", "--test-passphrase", "--key-file", key, f).status() == 0;
    }

    private static Run.Result amend(Path f, String unlock, String options) {
        return imago("amend", SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], "--image-opts",
                "driver=luks,key-secret=" + unlock + ",file.filename=" + f, "-o", options);
    }

    @Test
    void addAndEraseAPassphrase() throws IOException {
        Path f = dir.resolve("a.luks");
        imago("create", "-q", "-f", "luks", SECRETS[0], SECRETS[1], "-o",
                "key-secret=sec0,luks-version=2,pbkdf=pbkdf2,iter-time=10", f.toString(), "1M").ok();
        amend(f, "sec0", "state=active,new-secret=sec1,iter-time=10").ok();
        assertTrue(cryptsetupUnlocks(f, "abc") && cryptsetupUnlocks(f, "def"));
        String dump = Qemu.ok(dir, Qemu.tool("cryptsetup"), "luksDump", f);
        assertTrue(dump.contains("  1: luks2") && dump.contains("PBKDF:      pbkdf2"), dump);

        amend(f, "sec1", "state=inactive,old-secret=sec0").ok();
        assertTrue(!cryptsetupUnlocks(f, "abc") && cryptsetupUnlocks(f, "def"));
        String refused = amend(f, "sec1", "state=inactive,keyslot=1").failsWithOneLine();
        assertEquals("imago: Attempt to erase the only active keyslot 1 which will erase all the data in the image "
                + "irreversibly - refusing operation", refused.strip());
        assertNotEquals(0, Qemu.run(dir, Qemu.img(), "info", "--image-opts",
                "driver=luks,file.filename=" + f).status(), "qemu-img 7.2 cannot open LUKS2");
    }
}
