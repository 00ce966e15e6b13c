package imago.cli.command;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.BiFunction;

/**
 * A command line run both ways, for the tests of the direct paths ({@link DirectRun}, {@link DirectConvert}): as the
 * command runs (its direct path first) and through picocli's parse alone; the two must agree.
 */
final class BothWays {
    private BothWays() {
    }

    /** What one run printed and returned. */
    record Printed(int status, String out, String err) {
    }

    /** Runs a command line in a session. */
    interface Runner {
        int run(Session session, String[] args);
    }

    /** What a test compares of one run of a command line (what it printed, and what it left). */
    @FunctionalInterface
    interface Outcome<R> {
        R of(Runner runner) throws IOException;
    }

    /** The command as it runs: the direct paths first. */
    static final Runner CLI = (session, args) -> Cli.run(session.program(), session.out(), session.err(), args);
    /** picocli's parse alone. */
    static final Runner PICOCLI = (session, args) -> Cli.commandLine(session, args).execute(args);

    /**
     * Asserts that {@code direct} takes {@code args} and that running them both ways gives the same {@code outcome}.
     */
    static <R> void assertAgree(BiFunction<Session, String[], ?> direct, String[] args, Outcome<R> outcome)
            throws IOException {
        String line = String.join(" ", args);
        assertNotNull(direct.apply(session(), args), line);
        R viaDirect = outcome.of(CLI);
        R viaPicocli = outcome.of(PICOCLI);
        assertEquals(viaPicocli, viaDirect, line);
    }

    /** Runs {@code args} through {@code runner}, capturing what it prints. */
    static Printed run(Runner runner, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        int status = runner.run(new Session(Cli.DEFAULT_PROGRAM, o, e), args);
        o.flush();
        e.flush();
        return new Printed(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** A session that prints nowhere. */
    static Session session() {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return new Session(Cli.DEFAULT_PROGRAM, sink, sink);
    }
}
