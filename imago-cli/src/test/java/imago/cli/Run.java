package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.cli.command.Cli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Runs the command in this JVM and captures what it prints. */
final class Run {

    private Run() {
    }

    /** What one run printed and returned. */
    record Result(int status, String out, String err) {
        /** Asserts success and returns this. */
        Result ok() {
            assertEquals(0, status, () -> "exit status; stdout:\n" + out + "\nstderr:\n" + err);
            return this;
        }

        /**
         * Asserts exit status 1 with exactly one line on stderr, {@code imago: ...}, and no stack trace;
         * returns that line.
         */
        String failsWithOneLine() {
            assertEquals(1, status, () -> "exit status; stdout:\n" + out + "\nstderr:\n" + err);
            assertTrue(err.endsWith("\n"), () -> "stderr ends with a newline: " + err);
            assertEquals(1, err.lines().count(), () -> "one line on stderr:\n" + err);
            assertTrue(err.startsWith("imago: "), err);
            assertFalse(err.contains("\tat "), err);
            assertFalse(err.contains("Exception"), err);
            return err.strip();
        }
    }

    /**
     * Runs the command as a {@code program} symlink to the launcher runs it (a {@code qemu-io} symlink runs
     * {@code io}), with {@code input} as its standard input.
     */
    static Result as(String program, String input, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Cli.run(program, new java.io.ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                args);
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Runs {@code imago args...}. */
    static Result imago(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Cli.run(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
}
