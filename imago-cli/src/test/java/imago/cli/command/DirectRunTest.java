package imago.cli.command;

import static imago.cli.command.BothWays.CLI;
import static imago.cli.command.BothWays.run;
import static imago.cli.command.BothWays.session;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DirectRun} against picocli: every command line it takes gives the same output, messages and exit
 * status as picocli's parse of it, and it leaves every other one to picocli.
 */
class DirectRunTest {

    @Test
    void takesThePlainFormsAndAgreesWithPicocli(@TempDir Path dir) throws IOException {
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
            BothWays.assertAgree(DirectRun::parse, args, runner -> run(runner, args));
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
        BothWays.Printed usage = run(CLI, "info", image, image);
        assertEquals(Cli.FAILED, usage.status());
        assertEquals("imago: Expecting one image file name\nTry 'imago --help' for more information\n", usage.err());
        BothWays.Printed help = run(CLI, "map", "--help");
        assertEquals(Cli.OK, help.status());
        assertTrue(help.out().contains("--start-offset"), help.out());
    }
}
