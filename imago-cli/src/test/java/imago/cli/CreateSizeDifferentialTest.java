package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code create} and {@code convert} at the edges of sizes, sampled per format, against qemu-img 7.2: 1 EiB, 2^63 - 1,
 * 2^63 - 512, 16 EiB and just past each format's own largest size get qemu-img's status, lines and leftover file
 * (create words a size past a limit as qemu-img's bdrv_img_create does, convert as the format's driver does). Where
 * qemu-img writes an image that it cannot use itself (vmdk's sparse subformats past 256 TiB - 32 MiB, qcow past its L1
 * table's reach), imago refuses with a message that says why and leaves no image.
 */
class CreateSizeDifferentialTest {
    private static final String SECRET = "--object secret,id=sec0,data=x -f luks -o key-secret=sec0,iter-time=10";

    @TempDir
    static Path dir;

    private static CliDifferential both;

    @BeforeAll
    static void tools() {
        // fails under IMAGO_REQUIRE_QEMU=1 without qemu-img; sources larger than the file system's largest file
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "huge.qcow2", "1P");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "big.qcow2", "2041G");
        both = new CliDifferential(dir);
    }

    /** Sizes qemu-img refuses: the same status, lines and file left (none, or an empty one). */
    @ParameterizedTest
    @ValueSource(strings = {"-f qcow2 OUT 1E", "-f qcow2 OUT 9223372036854775807", "-f qcow2 OUT 9223372036854775296",
        "-f qcow2 OUT 2251799813685760", "-f qcow2 OUT 16E", "-f qcow2 -o cluster_size=2M OUT 4E",
        "-f raw OUT 1E", "-f raw OUT 9223372036854775807", "-f raw OUT 9223372036854775296",
        "-f qed OUT 1E", "-f qed OUT 70368744243200", "-f vpc OUT 1E", "-f vpc OUT 2190433321472",
        "-f vpc -o subformat=fixed OUT 9223372036854775807", "-f vhdx OUT 1E", "-f vhdx OUT 70368744178176",
        "-f vdi OUT 1E", "-f vdi OUT 9223372036854775807", "-f vdi OUT 562949919867392",
        "-f parallels OUT 1E", "-f parallels OUT 9223372036854775807", "-f parallels OUT 4503599627370496",
        SECRET + " OUT 1E", SECRET + " OUT 9223372036854775807", "-f vmdk OUT 16E"})
    void refusesAsQemuImg(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("create", line, "raw");
        assertEquals(1, o.qemu().status(), line + ": a refusal");
    }

    /** convert's target too large: the driver's words after qemu-img's "error while converting". */
    @ParameterizedTest
    @ValueSource(strings = {"-O raw huge.qcow2 OUT", "-O vpc big.qcow2 OUT"})
    void convertRefusesAsQemuImg(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("convert", line, "raw");
        assertEquals(1, o.qemu().status(), line + ": a refusal");
    }

    /** The largest sparse vmdk qemu-img writes right, and the same file from imago (its last sector writable; a check of
     * its 32 GiB of tables would take too long here). */
    @Test
    void makesTheLargestSparseVmdkAsQemuImg() throws Exception {
        String size = "281474943156224";
        Path theirs = dir.resolve("q-max.vmdk");
        Path ours = dir.resolve("i-max.vmdk");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "vmdk", theirs.toString(), size);
        Run.Result r = Run.imago("create", "-q", "-f", "vmdk", ours.toString(), size);
        assertEquals(0, r.status(), r.err());
        assertEquals(Files.size(theirs), Files.size(ours));
        String write = "write -P 7 " + (Long.parseLong(size) - 512) + " 512";
        assertTrue(Qemu.ok(dir, Qemu.io(), "-f", "vmdk", "-c", write, ours.toString()).contains("wrote 512/512"));
    }

    /**
     * Past 256 TiB - 32 MiB, qemu-img 7.2 writes a sparse vmdk without a grain directory (it counts the grain table
     * entries in 32 bits), whose writes and check fail; imago refuses the size and makes no file.
     */
    @ParameterizedTest
    @ValueSource(strings = {"281474943156736", "1E", "9223372036854775296"})
    void refusesTheVmdkQemuImgCannotUse(String size) throws Exception {
        Path theirs = dir.resolve("q-" + size + ".vmdk");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "vmdk", theirs.toString(), size);
        Qemu.Output written = Qemu.run(dir, Qemu.io(), "-f", "vmdk", "-c", "write 0 64k", theirs.toString());
        String said = written.out() + written.err();
        assertTrue(said.contains("write failed") || said.contains("can't open"), "qemu-io cannot write qemu-img's "
                + size + ": " + said);
        Path ours = dir.resolve("i-" + size + ".vmdk");
        Run.Result r = Run.imago("create", "-q", "-f", "vmdk", ours.toString(), size);
        assertEquals(1, r.status());
        assertTrue(r.err().contains("is too large for vmdk monolithicSparse: at most 281474943156224 bytes"), r.err());
        assertFalse(Files.exists(ours), "no file left");
    }

    /** qemu-img 7.2 writes a 48-byte qcow image of 1 EiB that it cannot open; imago refuses it, with its limit. */
    @Test
    void refusesTheQcowQemuImgCannotOpen() throws Exception {
        Path theirs = dir.resolve("q.qcow");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow", theirs.toString(), "1E");
        assertEquals(48, Files.size(theirs));
        Qemu.Output info = Qemu.runImg(dir, "info", theirs.toString());
        assertEquals(1, info.status());
        assertTrue(info.err().contains("Image too large"), info.err());
        for (String size : new String[] {"1E", "9223372036854775807"}) {
            Path ours = dir.resolve("i.qcow");
            Run.Result r = Run.imago("create", "-q", "-f", "qcow", ours.toString(), size);
            assertEquals(1, r.status(), size);
            assertEquals("imago: " + ours + ": Image size too large for qcow (at most 8 TiB: imago's limit on the L1 "
                    + "table)\n", r.err(), size);
            assertEquals(0, Files.size(ours), "an empty file, as qemu-img's qcow refusals leave");
        }
    }
}
