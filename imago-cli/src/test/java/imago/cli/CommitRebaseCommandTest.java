package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code commit} and {@code rebase} side by side with qemu-img 7.2: the same chain is copied twice,
 * qemu-img works on one copy and imago on the other; then the output and exit status, the guest content
 * of every image, {@code qemu-img check} and (for rebase) the rewritten header must agree.
 */
class CommitRebaseCommandTest {
    @TempDir
    Path dir;
    private Path ours;
    private Path theirs;
    private byte[] expected;

    @BeforeEach
    void chain() throws IOException {
        Qemu.require();
        Path made = Files.createDirectory(dir.resolve("made"));
        qemuImg(made, "create", "-q", "-f", "qcow2", "base.qcow2", "6M");
        qemuIo(made, "base.qcow2", "write -P 1 0 1M", "write -P 9 4M 1M");
        qemuImg(made, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
        qemuIo(made, "mid.qcow2", "write -P 2 512k 1M", "write -z 4608k 64k");
        qemuImg(made, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        qemuIo(made, "top.qcow2", "write -P 3 3M 64k", "write -z 0 4k", "write -P 4 5M 64k", "write -z 4M 64k",
                "write -P 5 5000k 3k");
        qemuImg(made, "create", "-q", "-f", "qcow2", "other.qcow2", "5M");
        qemuIo(made, "other.qcow2", "write -P 7 0 3M", "write -P 1 3584k 512k");
        qemuImg(made, "convert", "-O", "raw", "top.qcow2", "expected.raw");
        expected = Files.readAllBytes(made.resolve("expected.raw"));
        ours = copy(made, "ours");
        theirs = copy(made, "qemu"); // same length as "ours": absolute names stored in headers line up
    }

    private Path copy(Path from, String name) throws IOException {
        Path to = Files.createDirectory(dir.resolve(name));
        try (var files = Files.list(from)) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
        return to;
    }

    private static String qemuImg(Path cwd, Object... args) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.img()));
        cmd.addAll(List.of(args));
        return Qemu.ok(cwd, cmd.toArray());
    }

    private static void qemuIo(Path cwd, String file, String... commands) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.io(), "-f", "qcow2"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(file);
        Qemu.ok(cwd, cmd.toArray());
    }

    /** Runs the command with qemu-img in one copy and imago in the other; both must answer alike. */
    private Run.Result both(String... args) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.img()));
        for (String a : args) {
            cmd.add(a.replace("@", theirs + "/"));
        }
        Qemu.Output q = Qemu.run(theirs, cmd.toArray());
        Run.Result r = imago(Arrays.stream(args).map(a -> a.replace("@", ours + "/")).toArray(String[]::new));
        assertEquals(q.status(), r.status(), () -> String.join(" ", args) + "\nqemu: " + q.err() + "\nimago: " + r.err());
        assertEquals(q.out().replace(theirs + "/", "@"), r.out().replace(ours + "/", "@"), String.join(" ", args));
        return r;
    }

    private byte[] content(Path image) throws IOException {
        Path raw = dir.resolve("content.raw");
        Files.deleteIfExists(raw);
        qemuImg(dir, "convert", "-O", "raw", image, raw);
        return Files.readAllBytes(raw);
    }

    private void clean(Path image) {
        String check = qemuImg(dir, "check", image);
        assertTrue(check.startsWith("No errors were found on the image."), image + ": " + check);
    }

    /** Every image of both copies is clean, and each image's guest content is the same in both copies. */
    private void sameContent(String... images) throws IOException {
        for (String name : images) {
            clean(ours.resolve(name));
            clean(theirs.resolve(name));
            assertArrayEquals(content(theirs.resolve(name)), content(ours.resolve(name)), name);
        }
    }

    /**
     * The guest-visible layout of {@code name} in both copies: host offsets are left out, and so are the
     * extent boundaries they alone cause (allocation order may differ).
     */
    private void sameAllocation(String name) {
        String q = layout(theirs.resolve(name));
        assertTrue(q.contains("depth"), () -> name + ": no extents parsed");
        assertEquals(q, layout(ours.resolve(name)), name);
    }

    private String layout(Path image) {
        List<String> out = new ArrayList<>();
        long start = -1;
        long end = -1;
        String kind = null;
        for (String line : qemuImg(dir, "map", "--output=json", image).lines().toList()) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile(
                    "\"start\": (\\d+), \"length\": (\\d+), (\"depth\".*?\"data\": \\w+)").matcher(line);
            if (!m.find()) {
                continue;
            }
            long s0 = Long.parseLong(m.group(1));
            long len = Long.parseLong(m.group(2));
            if (kind != null && kind.equals(m.group(3)) && end == s0) {
                end += len;
                continue;
            }
            if (kind != null) {
                out.add(start + "+" + (end - start) + " " + kind);
            }
            start = s0;
            end = s0 + len;
            kind = m.group(3);
        }
        if (kind != null) {
            out.add(start + "+" + (end - start) + " " + kind);
        }
        return String.join("\n", out);
    }

    @Test
    void commitIntoTheBackingFileAndEmpty() throws IOException {
        assertEquals("Image committed.\n", both("commit", "@top.qcow2").out());
        sameContent("base.qcow2", "mid.qcow2", "top.qcow2");
        assertArrayEquals(expected, content(ours.resolve("top.qcow2")));
        assertArrayEquals(expected, content(ours.resolve("mid.qcow2")));
        // the committed image is empty: everything comes from below
        sameAllocation("top.qcow2");
        assertTrue(!qemuImg(dir, "map", "--output=json", ours.resolve("top.qcow2")).contains("\"depth\": 0"));
    }

    @Test
    void commitIntoABaseFurtherDownKeepingTheImage() throws IOException {
        both("commit", "-q", "-d", "-b", "@base.qcow2", "@top.qcow2");
        sameContent("base.qcow2", "mid.qcow2", "top.qcow2");
        assertArrayEquals(expected, content(ours.resolve("base.qcow2")));
        sameAllocation("top.qcow2");
        sameAllocation("mid.qcow2");
    }

    @Test
    void commitIntoABaseNamedAsStoredKeepsTheImage() throws IOException {
        both("commit", "-b", "base.qcow2", "@top.qcow2");
        sameContent("base.qcow2", "mid.qcow2", "top.qcow2");
        assertArrayEquals(expected, content(ours.resolve("base.qcow2")));
        assertArrayEquals(expected, content(ours.resolve("top.qcow2")));
        sameAllocation("top.qcow2");
    }

    /**
     * Issue 11, item 1: {@code -b} implies {@code -d}, as in qemu-img. Emptying the top image after committing
     * into a base below the middle layer would let the middle layer's older data show through where the top
     * image overwrote it: here top's pattern 3 at 128k over mid's pattern 2.
     */
    @Test
    void commitWithABaseLeavesTheImageAsItIs() throws IOException {
        for (Path copy : List.of(ours, theirs)) {
            qemuImg(copy, "create", "-q", "-f", "qcow2", "b.qcow2", "1M");
            qemuIo(copy, "b.qcow2", "write -P 1 0 64k", "write -P 1 64k 64k");
            qemuImg(copy, "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "m.qcow2");
            qemuIo(copy, "m.qcow2", "write -P 2 64k 64k", "write -P 2 128k 64k");
            qemuImg(copy, "create", "-q", "-f", "qcow2", "-b", "m.qcow2", "-F", "qcow2", "t.qcow2");
            qemuIo(copy, "t.qcow2", "write -P 3 128k 64k");
        }
        byte[] before = content(ours.resolve("t.qcow2"));
        assertEquals("Image committed.\n", both("commit", "-b", "@b.qcow2", "@t.qcow2").out());
        qemuIo(ours, "t.qcow2", "read -P 3 128k 64k", "read -P 2 64k 64k", "read -P 1 0 64k");
        assertArrayEquals(before, content(ours.resolve("t.qcow2")));
        assertArrayEquals(before, content(ours.resolve("b.qcow2")));
        sameContent("b.qcow2", "m.qcow2", "t.qcow2");
        sameAllocation("t.qcow2");
        sameAllocation("m.qcow2");
        sameAllocation("b.qcow2");
    }

    /** Commit grows a smaller base to the size of the committed image, as qemu-img does. */
    @Test
    void commitIntoASmallerBaseGrowsIt() throws IOException {
        for (Path copy : List.of(ours, theirs)) {
            qemuImg(copy, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "big.qcow2", "9M");
            qemuIo(copy, "big.qcow2", "write -P 6 5M 2M", "write -P 8 8M 1M");
        }
        both("commit", "@big.qcow2");
        sameContent("base.qcow2", "big.qcow2");
        // (host clusters are allocated in another order than qemu-img's, so maps are not compared)
        assertTrue(qemuImg(dir, "info", ours.resolve("base.qcow2")).contains("(9437184 bytes)"));
    }

    /**
     * Commit into an overlay shorter than its own backing file: growing it must hide the backing file's
     * data past its old end (zero clusters, as qemu-img's truncate with zero write).
     */
    @Test
    void commitIntoAShortOverlayOfALongerBaseHidesTheBase() throws IOException {
        for (Path copy : List.of(ours, theirs)) {
            qemuImg(copy, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "short.qcow2", "1000K");
            qemuIo(copy, "short.qcow2", "write -P 2 0 100K");
            qemuImg(copy, "create", "-q", "-f", "qcow2", "-b", "short.qcow2", "-F", "qcow2", "long.qcow2", "7M");
            qemuIo(copy, "long.qcow2", "write -P 3 2M 64k", "write -P 4 6M 512k");
        }
        both("commit", "-d", "@long.qcow2");
        sameContent("base.qcow2", "short.qcow2", "long.qcow2");
        byte[] grown = content(ours.resolve("short.qcow2"));
        assertEquals(7 << 20, grown.length);
        // base.qcow2 holds 9s at 4M..5M: the grown overlay must not show them
        assertEquals(0, grown[(4 << 20) + 100]);
        sameAllocation("short.qcow2");
    }

    @Test
    void commitRefusals() throws IOException {
        byte[] before = Files.readAllBytes(ours.resolve("top.qcow2"));
        both("commit", "@base.qcow2");
        both("commit", "-b", "@nonexistent.qcow2", "@top.qcow2");
        both("commit", "-b", "@top.qcow2", "@top.qcow2");
        assertArrayEquals(before, Files.readAllBytes(ours.resolve("top.qcow2")));
    }

    @Test
    void safeRebaseOntoAnotherImageKeepsTheContent() throws IOException {
        both("rebase", "-b", "@other.qcow2", "-F", "qcow2", "@top.qcow2");
        sameContent("top.qcow2", "other.qcow2", "mid.qcow2");
        assertArrayEquals(expected, content(ours.resolve("top.qcow2")));
        sameAllocation("top.qcow2");
        sameHeader("top.qcow2");
    }

    @Test
    void safeRebaseOntoNothingKeepsTheContent() throws IOException {
        both("rebase", "-b", "", "@top.qcow2");
        sameContent("top.qcow2");
        assertArrayEquals(expected, content(ours.resolve("top.qcow2")));
        sameAllocation("top.qcow2");
        sameHeader("top.qcow2");
    }

    @Test
    void unsafeRebaseOnlyRewritesTheReference() throws IOException {
        both("rebase", "-u", "-b", "other.qcow2", "-F", "qcow2", "@top.qcow2");
        sameHeader("top.qcow2");
        sameContent("top.qcow2");
        both("rebase", "-u", "-b", "a-name-that-is-rather-long/and/does/not/exist.qcow2", "-F", "raw", "@top.qcow2");
        sameHeader("top.qcow2");
        both("rebase", "-u", "@top.qcow2");
        sameHeader("top.qcow2");
        both("rebase", "-u", "-b", "@base.qcow2", "-F", "qcow2", "@mid.qcow2");
        sameHeader("mid.qcow2");
    }

    @Test
    void rebaseRefusals() throws IOException {
        byte[] before = Files.readAllBytes(ours.resolve("top.qcow2"));
        both("rebase", "@top.qcow2");
        both("rebase", "-b", "@other.qcow2", "@top.qcow2");
        both("rebase", "-b", "@missing.qcow2", "-F", "qcow2", "@top.qcow2");
        assertArrayEquals(before, Files.readAllBytes(ours.resolve("top.qcow2")));
    }

    /** Cluster 0 (header, extensions, backing name) is byte for byte what qemu-img wrote. */
    private void sameHeader(String name) throws IOException {
        byte[] q = Arrays.copyOf(Files.readAllBytes(theirs.resolve(name)), 65536);
        byte[] o = Arrays.copyOf(Files.readAllBytes(ours.resolve(name)), 65536);
        String qs = new String(q, StandardCharsets.ISO_8859_1).replace(theirs + "/", "@");
        String os = new String(o, StandardCharsets.ISO_8859_1).replace(ours + "/", "@");
        assertEquals(qs, os, name);
    }
}
