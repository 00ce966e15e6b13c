package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code imago resize} against {@code qemu-img resize}, step by step on two copies of the same image:
 * the same exit status, output and messages (qemu-img's size-syntax help lines aside), the same virtual
 * size afterwards, and for qcow2 a clean {@code qemu-img check} and identical contents.
 */
class ResizeCommandTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** The steps, in order; FILE stands for the image. */
    static final List<String> STEPS = List.of(
            "FILE 5M", "FILE -- -20M", "FILE -- -10M", "FILE +1M", "-q FILE 12M", "--shrink --preallocation=full FILE 4M",
            "--preallocation=full FILE 12M", "--preallocation=bogus FILE 20M", "--preallocation=metadata FILE 20M",
            "FILE abc", "--shrink FILE 10M", "--preallocation=falloc FILE 24M", "--preallocation=full FILE +3M",
            "--shrink FILE -- -1M", "FILE 1T", "--shrink FILE 3M", "--shrink FILE 3000000", "FILE 3000001");

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"qcow2, -f qcow2", "qcow2, ''", "raw, -f raw", "raw, ''"})
    void stepByStepLikeQemuImg(String format, String formatArgs) throws IOException {
        Path ours = dir.resolve("ours." + format);
        Path theirs = dir.resolve("theirs." + format);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", format, ours, "10M");
        // some data, also past where the image will be shrunk to
        Qemu.ok(dir, "qemu-io", "-f", format, "-c", "write -P 0x61 1M 2M", "-c", "write -P 0x62 9M 1M", ours);
        Files.copy(ours, theirs);
        sameSteps(format, formatArgs, ours, theirs, STEPS);
        if (format.equals("qcow2")) {
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), check.out() + check.err());
            assertTrue(check.out().contains("No errors were found"), check.out());
        }
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", format, "-F", format,
                ours, theirs));
    }

    /**
     * The same steps on a qcow2 image with persistent bitmaps (one disabled): every bitmap follows the
     * size as in qemu-img, so both images list the same bitmaps afterwards; with a bitmap left in use by a
     * QEMU that died, both refuse with the same message.
     */
    @Test
    void withBitmapsLikeQemuImg() throws IOException {
        Path ours = dir.resolve("bitmaps-ours.qcow2");
        Path theirs = dir.resolve("bitmaps-theirs.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", ours, "10M");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0x61 1M 2M", "-c", "write -P 0x62 9M 1M", ours);
        Qemu.ok(dir, "qemu-img", "bitmap", "--add", "-g", "512", ours, "fine");
        Qemu.ok(dir, "qemu-img", "bitmap", "--add", "--disable", ours, "off");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0x63 8M 1M", ours);
        Files.copy(ours, theirs);
        // not to 1 TiB: a bitmap of 512-byte granularity then takes qemu-img 256 MiB and minutes to store
        sameSteps("qcow2", "-f qcow2", ours, theirs, STEPS.stream().filter(x -> !x.endsWith(" 1T")).toList());
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
        assertEquals(0, check.status(), check.out() + check.err());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs));
        assertEquals(Qemu.ok(dir, "qemu-img", "info", theirs).replaceAll("(?s).*(bitmaps:.*)refcount bits.*", "$1"),
                Qemu.ok(dir, "qemu-img", "info", ours).replaceAll("(?s).*(bitmaps:.*)refcount bits.*", "$1"));
        // a QEMU that dies with the image open leaves its bitmaps in use: both refuse to resize
        Qemu.run(dir, "qemu-io", "-c", "write 0 4k", "-c", "sigraise 9", ours);
        Files.copy(ours, theirs, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        sameSteps("qcow2", "", ours, theirs, List.of("FILE 16M", "--shrink FILE 1M"));
    }

    /** Runs each step on both images: same status, output, messages and virtual size. */
    private void sameSteps(String format, String formatArgs, Path ours, Path theirs, List<String> steps)
            throws IOException {
        for (String step : steps) {
            String where = format + " " + formatArgs + " " + step;
            Step both = resizeBoth(formatArgs, step, ours, theirs, where);
            String expected = both.qemu().err().replace("qemu-img: ", "imago: ").replace(theirs.toString(), ours.toString());
            assertEquals(expected, both.imago().err(), where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
        }
    }

    /** What one resize step printed through each tool. */
    private record Step(Qemu.Output qemu, Run.Result imago) {
    }

    /**
     * Runs {@code imago resize OPTIONS STEP} and {@code qemu-img resize OPTIONS STEP}, the word {@code FILE} of the
     * step naming {@code ours} and {@code theirs} respectively, and asserts the same exit status and output.
     */
    private Step resizeBoth(String options, String step, Path ours, Path theirs, String where) {
        List<String> args = new ArrayList<>(List.of("resize"));
        if (!options.isEmpty()) {
            args.addAll(List.of(options.split(" ")));
        }
        List<Object> qemu = new ArrayList<>(List.of("qemu-img"));
        qemu.addAll(args);
        for (String a : step.split(" ")) {
            args.add(a.equals("FILE") ? ours.toString() : a);
            qemu.add(a.equals("FILE") ? theirs.toString() : a);
        }
        Run.Result r = imago(args.toArray(String[]::new));
        Qemu.Output q = Qemu.run(dir, qemu.toArray());
        assertEquals(q.status(), r.status(), () -> where + "\nimago: " + r.out() + r.err() + "\nqemu: " + q.out()
                + q.err());
        assertEquals(q.out(), r.out(), where);
        return new Step(q, r);
    }

    /**
     * Preallocating over extended L2 entries (with a backing file, which QEMU allows only then) and with
     * 512-byte clusters and 64-bit refcounts (L1 tables over many refcount blocks): created and resized step by
     * step as qemu-img does, with the same status, output and map, a clean check and identical contents.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"'extended_l2=on,preallocation=metadata', true", "'extended_l2=on,cluster_size=16k', false",
        "'cluster_size=512,refcount_bits=64', false"})
    void preallocatingOverExtendedL2AndWideRefcountsLikeQemuImg(String options, boolean backed) throws IOException {
        Path base = dir.resolve("base.raw");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", base, "6M");
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0xaa 0 6M", base);
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        List<String> create = new ArrayList<>(List.of("create", "-f", "qcow2", "-o", options));
        if (backed) {
            create.addAll(List.of("-b", base.toString(), "-F", "raw"));
        }
        List<Object> qemuCreate = new ArrayList<>(List.of("qemu-img"));
        qemuCreate.addAll(create);
        qemuCreate.addAll(List.of(theirs, "3M"));
        create.addAll(List.of(ours.toString(), "3M"));
        Run.Result c = imago(create.toArray(String[]::new));
        Qemu.Output qc = Qemu.run(dir, qemuCreate.toArray());
        assertEquals(qc.status(), c.status(), () -> c.out() + c.err() + "\nqemu: " + qc.out() + qc.err());
        assertEquals(qc.out().replace(theirs.toString(), ours.toString()), c.out());
        assertEquals(map(theirs), map(ours), options + " create");
        for (String step : List.of("--preallocation=metadata FILE 5M", "--preallocation=falloc FILE 7M",
                "--preallocation=full FILE +1M", "FILE 1G", "--preallocation=falloc FILE +4M", "--shrink FILE -- -8M")) {
            // (not metadata after the L1 table moved: qemu-img 7.2 then hands out the old table's clusters unzeroed,
            // and its image reads their stale bytes where imago's reads zeroes)
            String where = options + " " + step;
            resizeBoth("", step, ours, theirs, where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), where + "\n" + check.out() + check.err());
            assertTrue(check.out().contains("No errors were found"), check.out());
            if (!options.contains("cluster_size=512")) {
                // (with 512-byte clusters, which preallocated clusters qemu-img map calls zero depends on the
                // file-system blocks they share with metadata, laid out differently)
                assertEquals(map(theirs), map(ours), where);
            }
        }
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs));
    }

    /**
     * Growing an overlay whose backing file is longer: the new area reads as zero, not as the backing
     * file (qcow2 v3: explicit zeroes up to the next (sub)cluster, zero clusters after it; v2 fails as in
     * qemu-img), with the same map as qemu-img's apart from host offsets; then growing past the backing
     * file, and shrinking.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"compat=1.1", "compat=1.1:extended_l2=on", "compat=0.10", "compat=1.1:cluster_size=4096"})
    void growingOverALongerBackingFileLikeQemuImg(String options) throws IOException {
        Path base = dir.resolve("base.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0xaa 0 4M", base);
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options.replace(':', ','), "-b", base,
                "-F", "qcow2", ours, "1000K");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0xbb 0 100K", "-c", "write -P 0xcc 996K 2K", ours);
        Files.copy(ours, theirs);
        for (String step : List.of("FILE 1003K", "FILE 3M", "FILE 6M", "--shrink FILE 2M", "FILE 5M")) {
            String where = options + " " + step;
            Step both = resizeBoth("", step, ours, theirs, where);
            assertEquals(both.qemu().err().replace("qemu-img: ", "imago: "), both.imago().err(), where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
            assertEquals(map(theirs), map(ours), where);
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), where + "\n" + check.out() + check.err());
            assertTrue(check.out().contains("No errors were found"), check.out());
            assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs), where);
        }
    }

    /**
     * Resizing an image with an external data file, raw or not: the data file grows and shrinks with the
     * image (to the exact size, or to the end of the last cluster when preallocating), and a raw data file's
     * clusters are all mapped, as qemu-img leaves them.
     */
    @ParameterizedTest(name = "data_file_raw={0}")
    @CsvSource({"off", "on"})
    void resizingWithADataFileLikeQemuImg(String raw) throws IOException {
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        for (Path p : List.of(ours, theirs)) {
            String data = p.getFileName().toString().replace(".qcow2", ".bin");
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=" + data + ",data_file_raw=" + raw,
                    p, "1000K");
            Qemu.ok(dir, "qemu-io", "-c", "write -P 0xbb 0 100K", "-c", "write -P 0xcc 900K 100K", p);
        }
        for (String step : List.of("FILE 3000K", "--preallocation=metadata FILE 4M", "--shrink FILE 500K",
                "FILE 2M", "--preallocation=full FILE +1M", "--preallocation=falloc FILE 7000K", "--shrink FILE 1000K",
                "FILE 1001K")) {
            String where = raw + " " + step;
            Step both = resizeBoth("", step, ours, theirs, where);
            assertEquals(both.qemu().err().replace("qemu-img: ", "imago: "), both.imago().err(), where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
            assertEquals(Files.size(dir.resolve("theirs.bin")), Files.size(dir.resolve("ours.bin")), where);
            assertEquals(map(theirs), map(ours), where);
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), where + "\n" + check.out() + check.err());
            assertTrue(check.out().contains("No errors were found"), check.out());
            assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs), where);
            if (raw.equals("on")) {
                // the data file is the guest's disk: it reads as the image does (and may end with a whole cluster)
                assertTrue(Qemu.ok(dir, "qemu-img", "compare", "-F", "raw", ours, dir.resolve("ours.bin"))
                        .endsWith("Images are identical.\n"), where);
            }
        }
    }

    /** An overlay with an external data file over a longer backing file: the grown area reads as zero. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"cluster_size=65536", "cluster_size=4096"})
    void growingWithADataFileOverALongerBackingFileLikeQemuImg(String options) throws IOException {
        Path base = dir.resolve("base.raw");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", base, "4M");
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0xaa 0 4M", base);
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        for (Path p : List.of(ours, theirs)) {
            String data = p.getFileName().toString().replace(".qcow2", ".bin");
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options + ",data_file=" + data, "-b", base,
                    "-F", "raw", p, "1000K");
            Qemu.ok(dir, "qemu-io", "-c", "write -P 0xbb 0 100K", "-c", "write -P 0xcc 990K 2K", p);
        }
        for (String step : List.of("FILE 1003K", "FILE 3M", "--shrink FILE 500K", "FILE 2M", "FILE 5M")) {
            String where = options + " " + step;
            resizeBoth("", step, ours, theirs, where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
            assertEquals(Files.size(dir.resolve("theirs.bin")), Files.size(dir.resolve("ours.bin")), where);
            assertEquals(map(theirs), map(ours), where);
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), where + "\n" + check.out() + check.err());
            assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", ours, theirs), where);
        }
    }

    /**
     * qemu-img map's JSON without host offsets, which may differ, and with neighbours that differ only in
     * their offsets merged: "start length rest" per line.
     */
    private List<String> map(Path p) {
        java.util.regex.Pattern entry = java.util.regex.Pattern.compile(
                "\"start\": ([0-9]+), \"length\": ([0-9]+), (.*?)(, \"offset\": [0-9]+)?}");
        List<String> out = new ArrayList<>();
        long start = 0;
        long length = 0;
        String rest = null;
        for (String line : Qemu.ok(dir, "qemu-img", "map", "--output=json", p).lines().toList()) {
            java.util.regex.Matcher m = entry.matcher(line);
            assertTrue(m.find(), line);
            if (m.group(3).equals(rest) && Long.parseLong(m.group(1)) == start + length) {
                length += Long.parseLong(m.group(2));
                continue;
            }
            if (rest != null) {
                out.add(start + " " + length + " " + rest);
            }
            start = Long.parseLong(m.group(1));
            length = Long.parseLong(m.group(2));
            rest = m.group(3);
        }
        out.add(start + " " + length + " " + rest);
        return out;
    }

    private long virtualSize(Path p) {
        String json = Qemu.ok(dir, "qemu-img", "info", "-U", "--output=json", p);
        int i = json.indexOf("\"virtual-size\": ");
        return Long.parseLong(json.substring(i + 16, json.indexOf(',', i)));
    }
}
