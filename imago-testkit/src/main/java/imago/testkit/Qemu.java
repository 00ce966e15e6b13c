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

    private static Path find(String tool) {
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
        String message = tool + " is not on PATH: install qemu-utils to run the differential tests";
        if ("1".equals(System.getenv("IMAGO_REQUIRE_QEMU"))) {
            fail(message + " (IMAGO_REQUIRE_QEMU=1 requires them)");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }

    /** Runs {@code command} in {@code dir}, asserting exit status 0, and returns its standard output. */
    public static String ok(Path dir, Object... command) {
        Output o = run(dir, command);
        assertEquals(0, o.status(), () -> "failed: " + List.of(command) + "\n" + o.out() + o.err());
        return o.out();
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
