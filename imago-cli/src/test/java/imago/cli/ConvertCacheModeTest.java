package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago convert -t CACHE -T SRC_CACHE} against {@code qemu-img convert}: the same mode names are
 * accepted, and bad ones are refused with the same message, exit status and at the same point (a bad
 * source mode before anything is opened, a bad target mode after the target was created).
 */
class ConvertCacheModeTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    private Path source() throws IOException {
        byte[] data = new byte[(1 << 20) + 4096];
        new Random(7).nextBytes(data);
        return Files.write(dir.resolve("src.raw"), data);
    }

    /** imago's and qemu-img's runs of {@code convert ARGS SRC DST}; asserts the same one-line failure. */
    private void failsAsQemuImg(Path src, String... args) throws IOException {
        Path ours = dir.resolve("ours.out");
        Path theirs = dir.resolve("theirs.out");
        Files.deleteIfExists(ours);
        Files.deleteIfExists(theirs);
        List<Object> q = new ArrayList<>(List.of("qemu-img", "convert"));
        q.addAll(List.of(args));
        q.add(src);
        q.add(theirs);
        Qemu.Output expected = Qemu.run(dir, q.toArray());
        assertEquals(1, expected.status(), expected::err);
        List<String> i = new ArrayList<>(List.of("convert"));
        i.addAll(List.of(args));
        i.add(src.toString());
        i.add(ours.toString());
        String line = imago(i.toArray(String[]::new)).failsWithOneLine();
        // imago lists the installed formats after qemu-img's "Unknown file format" message
        assertEquals(expected.err().strip().replace("qemu-img: ", "imago: "), line.replaceFirst(
                " \\(installed formats: [^)]*\\)$", ""));
        // a refused target mode leaves the created target behind in both, a refused source mode none
        assertEquals(Files.exists(theirs), Files.exists(ours), String.join(" ", args));
    }

    @ParameterizedTest
    @ValueSource(strings = {"none", "off", "writeback", "unsafe", "directsync", "writethrough"})
    void acceptsQemuImgsModeNames(String mode) throws IOException {
        Path src = source();
        Qemu.ok(dir, "qemu-img", "convert", "-t", mode, "-T", mode, "-O", "qcow2", src, dir.resolve("q.qcow2"));
        Path dst = dir.resolve("i.qcow2");
        Run.Result r = imago("convert", "-t", mode, "-T", mode, "-O", "qcow2", src.toString(), dst.toString()).ok();
        assertEquals("", r.out() + r.err());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2",
                src, dst));
        assertEquals(0, Qemu.run(dir, "qemu-img", "check", dst).status());
    }

    @Test
    void unsafeCompressedOutputIsComplete() throws IOException {
        Path src = source();
        Path dst = dir.resolve("c.qcow2");
        imago("convert", "-c", "-t", "unsafe", "-O", "qcow2", "-o", "compression_type=zstd", src.toString(),
                dst.toString()).ok();
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", dst);
        assertEquals(0, check.status(), check::out);
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", src, dst));
        Path back = dir.resolve("back.raw");
        imago("convert", "-t", "unsafe", "-O", "raw", dst.toString(), back.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(back));
    }

    @Test
    void refusesUnknownModesAsQemuImg() throws IOException {
        Path src = source();
        failsAsQemuImg(src, "-t", "bogus", "-O", "raw");
        failsAsQemuImg(src, "-t", "", "-O", "raw");
        failsAsQemuImg(src, "-t", "on", "-O", "qcow2");
        failsAsQemuImg(src, "-t", "WriteBack", "-O", "raw"); // names are case-sensitive
        failsAsQemuImg(src, "-T", "bogus", "-O", "raw");
        failsAsQemuImg(src, "-T", "", "-O", "raw");
        failsAsQemuImg(src, "-t", "bogus", "-T", "bogus", "-O", "raw"); // the source's first
        failsAsQemuImg(src, "-t", "writeback", "-t", "bogus", "-O", "raw"); // the last one counts
    }

    @Test
    void checksModesInQemuImgsOrder() throws IOException {
        Path src = source();
        // the source mode before the output format, its options and the source itself
        failsAsQemuImg(src, "-T", "bogus", "-O", "nosuchfmt");
        failsAsQemuImg(src, "-T", "bogus", "-O", "qcow2", "-o", "nosuchoption=1");
        failsAsQemuImg(dir.resolve("missing.raw"), "-T", "bogus", "-O", "raw");
        // the target mode after all of those, and after compression support
        failsAsQemuImg(src, "-t", "bogus", "-O", "nosuchfmt");
        failsAsQemuImg(src, "-t", "bogus", "-c", "-O", "raw");
        failsAsQemuImg(src, "-t", "bogus", "-c", "-O", "qcow2");
        Path missing = dir.resolve("missing.raw");
        String line = imago("convert", "-t", "bogus", missing.toString(), dir.resolve("m.out").toString())
                .failsWithOneLine();
        assertTrue(line.contains("Could not open"), line);
        assertTrue(!Files.exists(dir.resolve("m.out")), "no target for a missing source");
    }
}
