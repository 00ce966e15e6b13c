package imago.cli.command;

import static imago.cli.command.BothWays.CLI;
import static imago.cli.command.BothWays.PICOCLI;
import static imago.cli.command.BothWays.run;
import static imago.cli.command.BothWays.session;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * What {@link LeadingOptions} passes on to picocli; qemu-img's answers to the words before the command are compared
 * with qemu-img's own in {@code CliTest}.
 */
class LeadingOptionsTest {

    @Test
    void imagosOwnOptionsAndTheCommandLineGoOnQemuImgsAreDropped() {
        assertArrayEquals(new String[] {"info", "x"}, rest("info", "x"));
        assertArrayEquals(new String[] {"info", "-f", "raw", "x"}, rest("-T", "a", "--", "info", "-f", "raw", "x"));
        assertArrayEquals(new String[] {"--debug", "--gate", "deny", "--gate=confined", "map", "x"},
                rest("--debug", "-Tb", "--gate", "deny", "--trace=c", "--gate=confined", "map", "x"));
        // picocli refuses a command name as --gate's value, and says so
        assertArrayEquals(new String[] {"--gate", "info", "x"}, rest("--gate", "info", "x"));
        assertArrayEquals(new String[] {"--debug"}, rest("--debug"));
        // imago's own command, no qemu-img one
        assertArrayEquals(new String[] {"help", "info"}, rest("help", "info"));
    }

    @Test
    void theFirstOfHelpAndVersionWins() {
        assertTrue(LeadingOptions.read(session(), "-hV").help);
        assertTrue(LeadingOptions.read(session(), "--gate", "deny", "--vers", "-h").version);
        assertTrue(LeadingOptions.read(session(), "-T", "x", "--he", "info", "-V").help);
    }

    /** The version is printed without picocli's model; picocli's own answer says the same. */
    @Test
    void versionWithoutPicocliSaysWhatPicocliSays() {
        BothWays.Printed picocli = run(PICOCLI, "--version");
        assertEquals(0, picocli.status());
        assertEquals(picocli, run(CLI, "--version"));
        assertEquals(picocli, run(CLI, "--debug", "-V"));
    }

    private static String[] rest(String... args) {
        LeadingOptions read = LeadingOptions.read(session(), args);
        assertNull(read.status, String.join(" ", args));
        return read.rest;
    }
}
