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
        for (String step : STEPS) {
            List<String> args = new ArrayList<>(List.of("resize"));
            if (!formatArgs.isEmpty()) {
                args.addAll(List.of(formatArgs.split(" ")));
            }
            List<Object> qemu = new ArrayList<>(List.of("qemu-img"));
            qemu.addAll(args);
            for (String a : step.split(" ")) {
                args.add(a.equals("FILE") ? ours.toString() : a);
                qemu.add(a.equals("FILE") ? theirs.toString() : a);
            }
            Run.Result r = imago(args.toArray(String[]::new));
            Qemu.Output q = Qemu.run(dir, qemu.toArray());
            String where = format + " " + formatArgs + " " + step;
            assertEquals(q.status(), r.status(), () -> where + "\nimago: " + r.out() + r.err() + "\nqemu: " + q.out()
                    + q.err());
            assertEquals(q.out(), r.out(), where);
            String expected = q.err().replace("qemu-img: ", "imago: ").replace(theirs.toString(), ours.toString());
            if (expected.contains("Optional suffix")) {
                expected = expected.lines().findFirst().orElseThrow() + "\n";
            }
            assertEquals(expected, r.err(), where);
            assertEquals(virtualSize(theirs), virtualSize(ours), where);
        }
        if (format.equals("qcow2")) {
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
            assertEquals(0, check.status(), check.out() + check.err());
            assertTrue(check.out().contains("No errors were found"), check.out());
        }
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", format, "-F", format,
                ours, theirs));
    }

    private long virtualSize(Path p) {
        String json = Qemu.ok(dir, "qemu-img", "info", "-U", "--output=json", p);
        int i = json.indexOf("\"virtual-size\": ");
        return Long.parseLong(json.substring(i + 16, json.indexOf(',', i)));
    }
}
