package imago.cli;

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
 * Finds and runs qemu-img and qemu-io for the differential tests. Without them the tests are skipped,
 * unless {@code IMAGO_REQUIRE_QEMU=1} is set (as in CI), in which case they fail.
 */
final class Qemu {

    private Qemu() {
    }

    /** What a process printed and returned. */
    record Output(int status, String out, String err) {
    }

    /** The path of {@code qemu-img}; skips or fails the test when there is none. */
    static Path img() {
        return require("qemu-img");
    }

    /** The path of {@code qemu-io}; skips or fails the test when there is none. */
    static Path io() {
        return require("qemu-io");
    }

    private static Path require(String tool) {
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

    /** Runs {@code command} in {@code dir} and waits for it (at most two minutes). */
    static Output run(Path dir, Object... command) {
        List<String> cmd = new ArrayList<>();
        for (Object c : command) {
            cmd.add(c.toString());
        }
        try {
            Path out = Files.createTempFile("qemu-out", ".txt");
            Path err = Files.createTempFile("qemu-err", ".txt");
            try {
                Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE)
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
