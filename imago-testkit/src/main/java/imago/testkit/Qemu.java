package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds and runs qemu-img and qemu-io, the reference the differential tests compare with. Without
 * them a test is skipped, unless {@code IMAGO_REQUIRE_QEMU=1} is set (as {@code .ci/run} does), in
 * which case it fails: CI never passes by skipping them.
 */
public final class Qemu {

    private Qemu() {
    }

    /**
     * What a process printed and returned.
     *
     * @param status the exit status
     * @param out what it printed on standard output
     * @param err what it printed on standard error
     */
    public record Output(int status, String out, String err) {
    }

    /** qemu-img's path; skips or fails the test when it is missing. */
    public static Path img() {
        return find("qemu-img");
    }

    /** qemu-io's path; skips or fails the test when it is missing. */
    public static Path io() {
        return find("qemu-io");
    }

    /** Skips or fails the test unless both qemu-img and qemu-io are installed. */
    public static void require() {
        img();
        io();
    }

    /**
     * Whether qemu-img is installed and lists {@code format} among its supported formats: the differential
     * checks apply. False without qemu-img, unless {@code IMAGO_REQUIRE_QEMU=1}, which fails the test then.
     */
    public static boolean knowsFormat(String format) {
        if (onPath("qemu-img") == null) {
            if ("1".equals(System.getenv("IMAGO_REQUIRE_QEMU"))) {
                fail("qemu-img is not on PATH (IMAGO_REQUIRE_QEMU=1 requires it)");
            }
            return false;
        }
        return Formats.SUPPORTED.contains(format);
    }

    /** qemu-img's "Supported formats:" list, asked once. */
    private static final class Formats {
        static final java.util.Set<String> SUPPORTED = ask();

        private static java.util.Set<String> ask() {
            Output help = run(Path.of("."), "qemu-img", "--help");
            for (String line : help.out().lines().toList()) {
                if (line.startsWith("Supported formats:")) {
                    return java.util.Set.of(line.substring("Supported formats:".length()).trim().split("\\s+"));
                }
            }
            throw new AssertionError("qemu-img --help lists no supported formats:\n" + help.out() + help.err());
        }
    }

    /**
     * {@code qemu-img check -f format file}: status 0 clean, 2 corrupt, 3 leaks only, 63 no checks for the
     * format (as qemu-img returns them).
     */
    public static Output check(Path file, String format) {
        return run(dir(file), img(), "check", "-f", format, file);
    }

    /** {@code qemu-img compare -f fa -F fb a b}: status 0 when the guest contents are identical. */
    public static Output compare(Path a, String formatA, Path b, String formatB) {
        return run(dir(a), img(), "compare", "-f", formatA, "-F", formatB, a, b);
    }

    /** {@code qemu-img map --output=json -f format file}, parsed. */
    public static List<QemuMap.Entry> map(Path file, String format) {
        return QemuMap.parse(ok(dir(file), img(), "map", "--output=json", "-f", format, file));
    }

    private static Path dir(Path file) {
        Path parent = file.toAbsolutePath().getParent();
        return parent != null ? parent : Path.of(".");
    }

    private static Path onPath(String tool) {
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(File.pathSeparator)) {
                if (dir.isEmpty()) {
                    continue;
                }
                Path p = Path.of(dir, tool);
                if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                    return p;
                }
            }
        }
        return null;
    }

    /**
     * Another tool the differential and interoperability tests run (qemu-nbd, nbdinfo, nbdcopy, nbdkit), found
     * on {@code PATH}; skips or fails the test as for qemu-img when it is missing.
     */
    public static Path tool(String name) {
        return find(name);
    }

    private static Path find(String tool) {
        Path found = onPath(tool);
        if (found != null) {
            return found;
        }
        requireInstalled(false, tool + " is not on PATH: install qemu-utils (and libnbd-bin, nbdkit for the NBD "
                + "tests) to run the differential tests");
        throw new AssertionError("unreachable");
    }

    /**
     * Does nothing when {@code present}; otherwise skips the test with {@code message}, or fails it under
     * {@code IMAGO_REQUIRE_QEMU=1}, where every reference tool the tests use must be installed.
     */
    public static void requireInstalled(boolean present, String message) {
        if (present) {
            return;
        }
        if ("1".equals(System.getenv("IMAGO_REQUIRE_QEMU"))) {
            fail(message + " (IMAGO_REQUIRE_QEMU=1 requires it)");
        }
        Assumptions.abort(message);
    }

    /** Runs {@code command} in {@code dir}, asserting exit status 0, and returns its standard output. */
    public static String ok(Path dir, Object... command) {
        Output o = run(dir, command);
        assertEquals(0, o.status(), () -> "failed: " + List.of(command) + "\n" + o.out() + o.err());
        return o.out();
    }

    /**
     * Runs a qemu-img command that derives a LUKS key ({@code create}, {@code measure} or {@code amend} of an
     * encrypted image) in {@code dir}, asserting exit status 0, and returns its standard output. qemu's PBKDF2
     * calibration times its first 2^15 iterations with the thread's CPU clock and gives up ("Unable to get accurate
     * CPU usage") when that reads 0 ms, which on a fast or busy machine happens now and then whatever
     * {@code iter-time} is; a failure costs milliseconds, so the command is run up to ten times while it fails so.
     */
    public static String okDerivingKey(Path dir, Object... command) {
        Output o = run(dir, command);
        for (int attempt = 1; attempt < 10 && o.status() != 0
                && o.err().contains("Unable to get accurate CPU usage"); attempt++) {
            o = run(dir, command);
        }
        Output last = o;
        assertEquals(0, last.status(), () -> "failed: " + List.of(command) + "\n" + last.out() + last.err());
        return last.out();
    }

    /**
     * The guest content of an image as {@code qemu-img convert IMAGE -O raw} reads it, where {@code image} is how
     * the command names it: {@code "-f", format, file}, or {@code "--object", secret, "--image-opts", options}
     * (a temporary file in {@code dir} holds the raw bytes while they are read).
     */
    public static byte[] convertToRaw(Path dir, Object... image) {
        List<Object> cmd = new ArrayList<>(List.of(img(), "convert"));
        cmd.addAll(List.of(image));
        try {
            Path raw = Files.createTempFile(dir, "qemu-convert", ".raw");
            try {
                cmd.addAll(List.of("-O", "raw", raw));
                ok(dir, cmd.toArray());
                return Files.readAllBytes(raw);
            } finally {
                Files.deleteIfExists(raw);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code qemu-img args} in {@code dir}, as {@link #run} runs a command: for a command line held as strings. */
    public static Output runImg(Path dir, String... args) {
        Object[] command = new Object[args.length + 1];
        command[0] = img();
        System.arraycopy(args, 0, command, 1, args.length);
        return run(dir, command);
    }

    /** Runs {@code command} in {@code dir} with no input and waits for it (at most two minutes). */
    public static Output run(Path dir, Object... command) {
        List<String> cmd = new ArrayList<>();
        for (Object c : command) {
            cmd.add(c.toString());
        }
        try {
            Path out = Files.createTempFile("qemu-out", ".txt");
            Path err = Files.createTempFile("qemu-err", ".txt");
            try {
                Process p = new ProcessBuilder(cmd).directory(dir.toFile())
                        .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
                p.getOutputStream().close();
                if (!p.waitFor(2, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    fail("timed out: " + cmd);
                }
                return new Output(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
