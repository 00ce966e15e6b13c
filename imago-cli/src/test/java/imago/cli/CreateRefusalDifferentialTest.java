package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code create} (and {@code convert}'s target) refused for an option's value, sampled per format, against qemu-img
 * 7.2: the same exit status and messages, and the same file left behind. qemu-img refuses qcow2's and luks's values
 * before it makes the file (none is left), the other formats' after (an empty file is left); an existing file is
 * emptied in the second case, and kept in the first only by imago (qemu-img deletes it, imago leaves a user's file as
 * it was).
 */
class CreateRefusalDifferentialTest {
    private static final byte[] EXISTING = "pre-existing".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    static Path dir;

    private static CliDifferential both;

    @BeforeAll
    static void tools() {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", "src.raw", "1M"); // fails under IMAGO_REQUIRE_QEMU=1
        both = new CliDifferential(dir);
    }

    /** Refusals of a new file: rc, stdout (the Formatting line), stderr and whether a file is left agree. */
    @ParameterizedTest
    @ValueSource(strings = {"-f qcow2 -o refcount_bits=-1 OUT 1M", "-f qcow2 -o cluster_size=3000 OUT 1M",
        "-f qcow2 -o compat=foo OUT 1M", "-f qcow2 -o compression_type=foo OUT 1M",
        "-f qcow2 -o lazy_refcounts=on,compat=0.10 OUT 1M", "-f qcow2 -o encrypt.format=luks OUT 1M",
        "-f qcow2 -o encrypt.format=foo OUT 1M", "-f qcow2 -o encryption=on OUT 1M",
        "-f qcow2 -o backing_fmt=qcow2 OUT 1M", "-f qcow2 -o encryption=on,encrypt.format=luks OUT 1M",
        "-f qcow2 -o encryption=off,encrypt.key-secret=x OUT 1M",
        // the alias's other words are taken as a format's name: never as "no encryption"
        "-f qcow2 -o encryption=yes OUT 1M", "-f qcow2 -o encryption=false OUT 1M", "-f qcow -o encryption=y OUT 1M",
        "-f qcow -o encryption=no OUT 1M", "-f qcow2 -o encryption=1 OUT 1M",
        // -b and -F for a format without backing files: refused before the Formatting line, the backing file first
        "-f vpc -F raw OUT 1M", "-f vdi -F raw OUT 1M", "-f raw -F raw OUT 1M", "-f luks -F raw OUT 1M",
        "-f vpc -b src.raw -F raw OUT 1M", "-f vhdx -b src.raw OUT 1M", "-f vpc -o bad=1 -F raw OUT 1M",
        "-f qcow -o encrypt.format=foo OUT 1M", "-f qcow -o encryption=on OUT 1M",
        "-f qcow -o encryption=on,encrypt.format=aes OUT 1M", "-f qcow -o encrypt.key-secret=sec0 OUT 1M",
        "-f qed -o table_size=3 OUT 1M", "-f qed -o cluster_size=128M OUT 1M",
        "-f raw -o preallocation=bad OUT 1M",
        "-f vmdk -o compat6=on,hwversion=6 OUT 1M", "-f vmdk -o backing_fmt=qcow2 OUT 1M",
        "-f vmdk -o preallocation=metadata OUT 1M",
        "-f vmdk -o subformat=twoGbMaxExtentFlat,preallocation=metadata OUT 1M",
        "-f vmdk -o subformat=bogus,preallocation=metadata OUT 1M",
        "-f vpc -o subformat=foo OUT 1M", "-f vhdx -o subformat=foo OUT 1M", "-f vhdx -o block_size=3M OUT 1M",
        "-f vdi -o preallocation=bad OUT 1M", "-f parallels -o cluster_size=0 OUT 1M",
        "-f luks -o cipher-alg=foo OUT 1M", "-f luks OUT 1M",
        "--object secret,id=sec0,data=x -f luks -o key-secret=nosuch OUT 1M",
        "--object secret,id=sec0,data=x -f luks -o key-secret=sec0,hash-alg=foo OUT 1M"})
    void refusesANewFileAsQemuImg(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("create", line, "raw");
        assertEquals(1, o.qemu().status(), line + ": a refusal");
    }

    /** {@code convert} makes its target as {@code create} does, and leaves the same file when the format refuses. */
    @ParameterizedTest
    @ValueSource(strings = {"-O qcow2 -o refcount_bits=3 src.raw OUT", "-O vpc -o subformat=foo src.raw OUT",
        "-O qed -o table_size=3 src.raw OUT", "-O luks -o cipher-alg=foo src.raw OUT"})
    void convertLeavesTheTargetAsQemuImg(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("convert", line, "raw");
        assertEquals(1, o.qemu().status(), line + ": a refusal");
    }

    /** Options given alone that the format accepts or ignores, as qemu-img (the created images compared). */
    @ParameterizedTest
    @ValueSource(strings = {"-f qcow -o encryption=off OUT 1M", "-f qcow2 -o encryption=off OUT 1M",
        "-f qcow -F raw OUT 1M",
        "-f qed -o backing_fmt=raw OUT 1M"})
    void acceptsAsQemuImg(String line) throws Exception {
        String format = line.split(" ")[1];
        CliDifferential.Outcome o = both.agree("create", line, format);
        assertEquals(0, o.qemu().status(), line);
    }

    /** Where qemu-img refuses after making the file, an existing file is emptied, or kept if refused before. */
    @ParameterizedTest
    @ValueSource(strings = {"-f qcow -o encrypt.format=foo OUT 1M", "-f qed -o table_size=3 OUT 1M",
        "-f vpc -o subformat=foo OUT 1M", "-f vhdx -o block_size=3M OUT 1M", "-f parallels -o cluster_size=0 OUT 1M",
        "-f vdi -o preallocation=metadata OUT 1M", "-f raw -o preallocation=bad OUT 1M",
        "-f vmdk -o compat6=on,hwversion=6 OUT 1M",
        "-f vmdk -o subformat=monolithicFlat,preallocation=metadata OUT 1M",
        "-f luks -o cipher-alg=foo OUT 1M"})
    void treatsAnExistingFileAsQemuImg(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("create", line, "raw", out -> Files.write(out, EXISTING), true);
        assertEquals(1, o.qemu().status(), line + ": a refusal");
        assertTrue(Files.exists(o.qemuOut()), line + ": qemu-img keeps the file");
        assertArrayEquals(Files.readAllBytes(o.qemuOut()), Files.readAllBytes(o.imagoOut()), line + ": the file left");
    }

    /**
     * Where qemu-img refuses before it makes the file (qcow2, luks), it deletes an existing file of that name; imago
     * refuses before it touches anything and leaves the user's file as it was, with the same messages.
     */
    @ParameterizedTest
    @ValueSource(strings = {"-f qcow2 -o refcount_bits=3 OUT 1M", "-f qcow2 -o encrypt.format=luks OUT 1M",
        "-f luks OUT 1M"})
    void keepsAnExistingFileQemuImgDeletes(String line) throws Exception {
        Path qemuOut = dir.resolve("qemu.out");
        Path imagoOut = dir.resolve("imago.out");
        Files.write(qemuOut, EXISTING);
        Files.write(imagoOut, EXISTING);
        Qemu.Output theirs = Qemu.runImg(dir, both.command("create", line, qemuOut));
        Run.Result ours = Run.imago(both.command("create", line, imagoOut));
        assertEquals(1, theirs.status(), line);
        assertEquals(theirs.status(), ours.status(), line);
        assertEquals(theirs.out().replace(qemuOut.toString(), "OUT"), ours.out().replace(imagoOut.toString(), "OUT"));
        assertEquals(theirs.err().replace(qemuOut.toString(), "OUT").replace("qemu-img: ", ""),
                ours.err().replace(imagoOut.toString(), "OUT").replace("imago: ", ""), line);
        assertFalse(Files.exists(qemuOut), line + ": qemu-img deletes the file");
        assertArrayEquals(EXISTING, Files.readAllBytes(imagoOut), line + ": imago keeps it as it was");
    }

    /** A refused qcow2 with an external data file leaves neither file (imago made the data file first). */
    @Test
    void leavesNoDataFileAsQemuImg() throws Exception {
        for (String tool : new String[] {"qemu", "imago"}) {
            Path out = dir.resolve(tool + "-df.qcow2");
            String[] args = {"create", "-f", "qcow2", "-o", "data_file=" + tool + "-df.raw,compat=0.10", out.toString(),
                "1M"};
            int status = tool.equals("qemu") ? Qemu.runImg(dir, args).status() : Run.imago(args).status();
            assertEquals(1, status, tool);
            assertFalse(Files.exists(out), tool + ": the image");
            assertFalse(Files.exists(dir.resolve(tool + "-df.raw")), tool + ": the data file");
        }
    }

    /** luks takes preallocation=metadata as off, as qemu-img: a container of the same size, with no data written. */
    @Test
    void takesLuksMetadataPreallocationAsOff() throws Exception {
        String line = "--object secret,id=sec0,data=x -f luks -o key-secret=sec0,iter-time=10,preallocation=metadata";
        Path qemuOut = dir.resolve("qemu-m.luks");
        Path imagoOut = dir.resolve("imago-m.luks");
        Qemu.Output theirs = Qemu.runImg(dir, both.command("create", line + " OUT 1M", qemuOut));
        Run.Result ours = Run.imago(both.command("create", line + " OUT 1M", imagoOut));
        assertEquals(0, theirs.status(), theirs.err());
        assertEquals(0, ours.status(), ours.err());
        assertEquals(Files.size(qemuOut), Files.size(imagoOut));
    }
}
