package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What scripts meet through qemu-img and imago on the same command lines: an image another process writes (its lock
 * held), sizes and formats {@code resize} refuses, {@code commit} of an image without a backing file and a
 * {@code rebase} onto a file that does not open. Same output, messages (program name aside), exit status and images.
 */
class ScriptRefusalsDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /** Output images opened writable by a test, to hold their locks while the tools run; closed after it. */
    private final List<Image> holders = new ArrayList<>();

    /** held.qcow2, which the tests open writable to hold its lock; plain.qcow2 (1M, no backing file). */
    @BeforeAll
    static void images() throws Exception {
        Path img = Qemu.img();
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "held.qcow2", "4M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 5 1M 64k", "held.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "plain.qcow2", "1M");
        both = new CliDifferential(dir);
    }

    /**
     * An image a writer holds (as a running VM holds it): reading and writing it are refused in qemu-img's two lines.
     */
    @ParameterizedTest
    @ValueSource(strings = {"info|held.qcow2", "check|held.qcow2", "map|held.qcow2", "resize|held.qcow2 +1M",
        "snapshot|-c s held.qcow2", "amend|-o compat=0.10 held.qcow2", "commit|held.qcow2", "commit|-d held.qcow2", "create|-f qcow2 OUT 1M"})
    void imageAnotherProcessWrites(String command) throws Exception {
        String[] parts = command.split("\\|", 2);
        holders.add(Imago.opener().path(dir.resolve("held.qcow2")).writable(true).open());
        try {
            if (parts[1].startsWith("-f qcow2 OUT")) {
                // the output image itself held: made first, then locked
                both.agree(parts[0], parts[1], "qcow2", out -> {
                    Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", out.toString(), "1M");
                    holders.add(Imago.opener().path(out).writable(true).open());
                }, true);
            } else {
                both.agree(parts[0], parts[1], "qcow2");
            }
        } finally {
            for (Image h : holders) {
                h.close();
            }
        }
    }

    /**
     * An overlay of an image a writer holds is made (the usual external snapshot of a running VM), as qemu-img opens
     * the backing file for its size sharing it: the same line and the same image.
     */
    @Test
    void overlayOfImageAnotherProcessWrites() throws Exception {
        String line = "-f qcow2 -b held.qcow2 -F qcow2 OUT";
        Path qemuOut = dir.resolve("qemu-overlay.qcow2");
        Path imagoOut = dir.resolve("imago-overlay.qcow2");
        Image writer = Imago.opener().path(dir.resolve("held.qcow2")).writable(true).open();
        Qemu.Output theirs;
        Run.Result mine;
        try {
            theirs = Qemu.runImg(dir, both.command("create", line, qemuOut));
            mine = Run.imago(both.command("create", line, imagoOut));
        } finally {
            writer.close();
        }
        assertEquals(0, theirs.status(), theirs.err());
        assertEquals(0, mine.status(), mine.err());
        assertEquals(theirs.out().replace(qemuOut.toString(), "OUT"), mine.out().replace(imagoOut.toString(), "OUT"));
        assertArrayEquals(Files.readAllBytes(qemuOut), Files.readAllBytes(imagoOut));
    }

    /** resize checks the size before it asks the format: a format without resize gets the size's refusals first. */
    @ParameterizedTest
    @ValueSource(strings = {"-f vpc OUT 1M", "-f vpc OUT --shrink 0", "-f vpc OUT +1M", "-f vdi OUT 1M",
        "-f qcow2 OUT abc", "-f qcow2 OUT +99999999999999999999", "-f qcow2 OUT 1Q"})
    void resizeRefusals(String line) throws Exception {
        String format = line.substring(3, line.indexOf(' ', 3));
        both.agree("resize", line, format, out -> Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", format,
                out.toString(), "4M"), true);
    }

    /** commit of an image without a backing file: qemu-img's sentence alone, without the file's name. */
    @Test
    void commitWithoutBackingFile() throws Exception {
        both.agree("commit", "plain.qcow2", "qcow2");
    }

    /** A safe rebase without -F opens the new backing file first: one that does not open is what is reported. */
    @Test
    void rebaseOntoMissingFileWithoutFormat() throws Exception {
        both.agree("rebase", "-b nonexist.qcow2 plain.qcow2", "qcow2");
    }
}
