package imago.qcow2.internal;

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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds and runs qemu-img and qemu-io. Without them tests are skipped, unless
 * {@code IMAGO_REQUIRE_QEMU=1} is set, in which case they fail.
 */
final class Qemu {

    private Qemu() {
    }

    /** What a process printed and returned. */
    record Output(int status, String out, String err) {
    }

    /** One entry of {@code qemu-img map --output=json}; {@code offset} is -1 when absent. */
    record MapEntry(long start, long length, int depth, boolean present, boolean zero, boolean data, long offset) {
    }

    /** Skips or fails the test when qemu-img or qemu-io is missing. */
    static void require() {
        find("qemu-img");
        find("qemu-io");
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
        String message = tool + " is not on PATH: install qemu-utils to run the qcow2 differential tests";
        if ("1".equals(System.getenv("IMAGO_REQUIRE_QEMU"))) {
            fail(message + " (IMAGO_REQUIRE_QEMU=1 requires them)");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }

    /** Runs {@code command} in {@code dir}, asserting success, and returns stdout. */
    static String ok(Path dir, Object... command) {
        Output o = run(dir, command);
        assertEquals(0, o.status(), () -> "failed: " + List.of(command) + "\n" + o.out() + o.err());
        return o.out();
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

    private static final Pattern OBJECT = Pattern.compile("\\{([^}]*)\\}");

    /** Parses {@code qemu-img map --output=json}. */
    static List<MapEntry> parseMap(String json) {
        List<MapEntry> out = new ArrayList<>();
        Matcher m = OBJECT.matcher(json);
        while (m.find()) {
            String o = m.group(1);
            out.add(new MapEntry(num(o, "start"), num(o, "length"), (int) num(o, "depth"), bool(o, "present"),
                    bool(o, "zero"), bool(o, "data"), o.contains("\"offset\"") ? num(o, "offset") : -1));
        }
        return out;
    }

    private static long num(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(\\d+)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return Long.parseLong(m.group(1));
    }

    private static boolean bool(String o, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(true|false)").matcher(o);
        if (!m.find()) {
            throw new AssertionError("no " + key + " in " + o);
        }
        return m.group(1).equals("true");
    }
}
