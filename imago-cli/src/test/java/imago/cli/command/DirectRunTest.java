package imago.cli.command;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DirectRun} against picocli: every command line it takes gives the same output, messages and exit
 * status as picocli's parse of it, and it leaves every other one to picocli.
 */
class DirectRunTest {

    /** What one run printed and returned. */
    private record Result(int status, String out, String err) {
    }

    @Test
    void takesThePlainFormsAndAgreesWithPicocli(@TempDir Path dir) {
        String base = dir.resolve("base.qcow2").toString();
        String top = dir.resolve("top.qcow2").toString();
        String raw = dir.resolve("x.raw").toString();
        assertEquals(0, run(CLI, "create", "-f", "qcow2", base, "4M").status());
        assertEquals(0, run(CLI, "io", "-c", "write -P 0xab 64k 128k", "-c", "write -z 1M 64k", base).status());
        assertEquals(0, run(CLI, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top).status());
        assertEquals(0, run(CLI, "io", "-c", "write -P 0x11 2M 4k", top).status());
        assertEquals(0, run(CLI, "create", "-f", "raw", raw, "1M").status());
        String missing = dir.resolve("missing.qcow2").toString();
        List<String[]> taken = List.of(
                new String[] {"info", top},
                new String[] {"info", "--output=json", top},
                new String[] {"info", "--output", "json", top},
                new String[] {"info", top, "--output=json"},
                new String[] {"info", "--output=json", "--output=human", top},
                new String[] {"info", "--backing-chain", top},
                new String[] {"info", "--backing-chain", "--output=json", "-U", top},
                new String[] {"info", "-f", "qcow2", "--force-share", base},
                new String[] {"info", "-f", "raw", top},
                new String[] {"info", "-f", "bogus", top},
                new String[] {"info", "--output=xml", top},
                new String[] {"info", "--output=json", raw},
                new String[] {"info", missing},
                new String[] {"info", "--output=json", dir.toString()},
                new String[] {"map", top},
                new String[] {"map", "--output=json", top},
                new String[] {"map", "--output", "json", "-f", "qcow2", "-U", top},
                new String[] {"map", "-s", "64k", "-l", "1M", "--output=json", top},
                new String[] {"map", "--start-offset=96k", "--max-length=2M", top},
                new String[] {"map", "-s", "5M", "--output=json", top},
                new String[] {"map", "-s", "1x", top},
                new String[] {"map", "--max-length", "huge", top},
                new String[] {"map", "--output=json", "-f", "raw", top},
                new String[] {"map", "--output=yaml", top},
                new String[] {"map", "--output=json", missing});
        for (String[] args : taken) {
            String line = String.join(" ", args);
            assertNotNull(DirectRun.parse(session(), args), line);
            Result direct = run(CLI, args);
            Result picocli = run(PICOCLI, args);
            assertEquals(picocli, direct, line);
        }
    }

    @Test
    void leavesEverythingElseToPicocli() {
        String[][] others = {
            {"info"}, {"map"}, {"check", "x"}, {"--debug", "info", "x"}, {"info", "x", "y"}, {"info", "-h", "x"},
            {"info", "--help"}, {"map", "-V"}, {"info", "--debug", "x"}, {"info", "--gate=deny", "x"},
            {"info", "--image-opts", "x"}, {"info", "--object", "secret,id=s,data=p", "x"}, {"info", "--", "x"},
            {"info", "-", "x"}, {"info", "", "x"}, {"info", "-Uf", "qcow2", "x"}, {"info", "-fqcow2", "x"},
            {"info", "-f=qcow2", "x"}, {"info", "-f", "-U", "x"}, {"info", "x", "-f"}, {"info", "--output=", "x"},
            {"info", "--output=-x", "x"}, {"info", "--output", "--backing-chain", "x"},
            {"info", "--force-share=true", "x"},
            {"info", "--backing-chain=false", "x"}, {"info", "-s", "0", "x"}, {"map", "--backing-chain", "x"},
            {"map", "-s", "-1", "x"}, {"map", "-s"}, {"info", "--out=json", "x"}, {"map", "-l1M", "x"},
        };
        for (String[] args : others) {
            assertNull(DirectRun.parse(session(), args), String.join(" ", args));
        }
    }

    @Test
    void aCommandLineLeftToPicocliStillRunsThroughIt(@TempDir Path dir) {
        String image = dir.resolve("x.qcow2").toString();
        assertEquals(0, run(CLI, "create", "-f", "qcow2", image, "1M").status());
        Result usage = run(CLI, "info", image, image);
        assertEquals(Cli.FAILED, usage.status());
        assertEquals("imago: Expecting one image file name\nTry 'imago --help' for more information\n", usage.err());
        Result help = run(CLI, "map", "--help");
        assertEquals(Cli.OK, help.status());
        assertTrue(help.out().contains("--start-offset"), help.out());
    }

    /** Runs a command line in a session. */
    private interface Runner {
        int run(Session session, String[] args);
    }

    /** The command as it runs: {@link DirectRun} first. */
    private static final Runner CLI = (session, args) -> Cli.run(session.program(), session.out(), session.err(), args);
    /** picocli's parse alone. */
    private static final Runner PICOCLI = (session, args) -> Cli.commandLine(session, args).execute(args);

    private static Result run(Runner runner, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        int status = runner.run(new Session(Cli.DEFAULT_PROGRAM, o, e), args);
        o.flush();
        e.flush();
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Session session() {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return new Session(Cli.DEFAULT_PROGRAM, sink, sink);
    }
}
