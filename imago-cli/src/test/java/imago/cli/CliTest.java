package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The top-level command, global options, and the one-line error rule for every subcommand. */
class CliTest {
    @TempDir
    Path dir;

    @Test
    void versionAndHelp() {
        Run.Result v = imago("--version").ok();
        assertTrue(v.out().startsWith("imago version "), v.out());
        Run.Result h = imago("--help").ok();
        for (String sub : new String[] {"info", "create", "convert", "io", "map", "compare", "snapshot", "bench"}) {
            assertTrue(h.out().contains(sub), h.out());
            Run.Result sh = imago(sub, "--help").ok();
            assertTrue(sh.out().startsWith("Usage: imago " + sub), sh.out());
        }
        assertTrue(h.out().contains("--gate"), h.out());
        assertTrue(imago("help", "info").ok().out().startsWith("Usage: imago info"));
    }

    @Test
    void everyFormOfVersionSaysTheSame() {
        String shortcut = imago("--version").ok().out(); // answered before picocli's model is built (LeadingOptionsTest)
        assertEquals(shortcut, imago("-V").ok().out());
        assertEquals(shortcut, imago("--debug", "--version").ok().out());
        assertEquals(shortcut, imago("-Vh", "info").ok().out());
        assertTrue(shortcut.matches("imago version \\S+\nJava .*\n"), shortcut);
    }

    @Test
    void helpBeforeACommandIsImagosOwnAndListsThemAll() {
        String top = imago("--help").ok().out();
        assertEquals(top, imago("-h", "info").ok().out());
        assertEquals(top, imago("--gate", "confined", "--help").ok().out());
        assertTrue(top.contains("  rebase "), top);
    }

    @Test
    void aCommandNameIsNoGateValue() {
        assertEquals("imago: Expected parameter for option '--gate' but found 'info' (try 'imago --help')",
                imago("--gate", "info", "x.qcow2").failsWithOneLine());
    }

    /**
     * Before the command qemu-img takes only -h, -V and -T (getopt: long names shortened, -T's value the next word
     * whatever it is, a cluster with an unknown letter inside named by the word before it) and refuses the rest with
     * its two lines; no command or an unknown one are its usage errors, options and no command end quietly.
     */
    @ParameterizedTest
    @ValueSource(strings = {"", "-f raw info x.img", "--foo info x.img", "--object secret,id=s,data=a info x.img",
        "--image-opts info x.img", "-U info x.img", "-q info", "-x", "-xh", "-T zzz* -xh", "-Uq info", "--help=foo",
        "--version=1", "--=x info", "---x info", "-", "--", "-T", "--trace", "--tr", "-T zzz* --", "bogus",
        "-T zzz* bogus", "-- -f info x.img", "-- info x.img", "-Tzzz* info x.img", "--trace=zzz* info x.img",
        "--t zzz* -- info x.img", "-T -h* info x.img", "info", "-hx", "-Vx", "--he", "--v"})
    void optionsBeforeTheCommandAsQemuImg(String line) throws IOException {
        Files.write(dir.resolve("x.img"), new byte[4096]);
        String[] args = line.isEmpty() ? new String[0] : line.split(" ");
        for (int i = 0; i < args.length; i++) {
            args[i] = args[i].equals("x.img") ? dir.resolve("x.img").toString() : args[i];
        }
        Qemu.Output q = Qemu.runImg(dir, args);
        Run.Result r = imago(args);
        assertEquals(q.status(), r.status(), line);
        // qemu-img names itself by the path it was run by where getopt names the word before a cluster
        assertEquals(q.err().replace(Qemu.img().toString(), "imago").replace("qemu-img", "imago"), r.err(), line);
        if (q.out().contains("usage: qemu-img")) { // after the version lines
            assertEquals(imago("--help").out(), r.out(), line);
        } else if (q.out().startsWith("qemu-img version")) {
            assertEquals(imago("--version").out(), r.out(), line);
        } else {
            assertEquals(q.out(), r.out(), line);
        }
    }

    /** imago's own options before the command ask for a command as qemu-img does when there is none. */
    @Test
    void imagosOwnOptionsWithoutACommand() {
        Run.Result r = imago("--gate=deny");
        assertEquals(1, r.status());
        assertEquals("imago: Not enough arguments\nTry 'imago --help' for more information\n", r.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"io", "nbd"})
    void badOptionsAreOneLine(String sub) {
        String line = imago(sub, "--bogus", "x").failsWithOneLine();
        assertTrue(line.contains("Unknown option: '--bogus'"), line);
        assertTrue(line.endsWith("(try 'imago " + sub + " --help')"), line);
    }

    /** qemu-img's subcommands refuse an unknown option in qemu-img's two lines. */
    @ParameterizedTest
    @ValueSource(strings = {"info", "create", "convert", "map", "compare", "snapshot", "bench", "resize"})
    void badOptionsOfQemuImgSubcommandsAreQemuImgsTwoLines(String sub) {
        boolean two = sub.equals("convert") || sub.equals("compare") || sub.equals("resize");
        Run.Result r = two ? imago(sub, "--bogus", "x", "y") : imago(sub, "--bogus", "x");
        assertEquals(1, r.status());
        assertEquals("imago: unrecognized option '--bogus'\nTry 'imago --help' for more information\n", r.err());
    }

    /** An option given without its argument: qemu-img's two lines and status, as qemu-img prints them. */
    @ParameterizedTest
    @ValueSource(strings = {"info -f", "info --output", "map --output", "convert -O", "create -f", "check -r",
        "bench -c"})
    void optionWithoutItsArgumentIsQemuImgsTwoLines(String line) {
        assertStatusAndStderrAsQemuImg(line, line.split(" "));
    }

    /** {@code qemu-img args} and {@code imago args} end with the same status and stderr (but for the program name). */
    private void assertStatusAndStderrAsQemuImg(String line, String[] args) {
        Qemu.Output q = Qemu.runImg(dir, args);
        Run.Result r = imago(args);
        assertEquals(q.status(), r.status(), line);
        assertEquals(q.err().replace("qemu-img", "imago"), r.err(), line);
    }

    /**
     * A command line with several problems gets qemu-img's first message and status: qemu-img reads the options from
     * left to right, stopping at an unknown option, an option without its argument or a value it checks there, and
     * only then counts the file names ({@code a.img} names an image that exists, {@code b.img} one that does not).
     */
    @ParameterizedTest
    @ValueSource(strings = {"bench -c x", "bench -c x --foo", "bench --foo -c x", "bench -c x -d", "bench -d x -c y a.img",
        "bench -d 0 -c x a.img", "bench -wc x", "bench -o x a.img b.img", "bench -S x", "bench --pattern x",
        "bench -t x a.img b.img", "bench -i x", "bench --flush-interval x", "bench --foo", "bench -d 0",
        "check -r x", "check -rx", "check -T x -r y", "check --output x --foo", "check --foo", "check -r x a.img b.img",
        "map -s x", "map -l 1 -s x", "map --max-length=x", "map --start-offset=x a.img b.img", "map -l x -s y a.img", "map --foo",
        "info --foo", "info --output x", "info -z", "commit -r x", "commit -t x", "commit -r x --foo",
        "snapshot -l -c x", "snapshot -a x -c y a.img", "snapshot -c x -l --foo", "compare -T x a.img",
        "rebase -t x", "resize --foo", "resize -f x", "resize -f qcow2 a.img --foo 1G", "amend -t x", "convert -m x", "measure --size x", "bitmap -g x", "create -f raw c.img -1",
        "create -f raw c.img 1x", "create -f raw -o size=1x c.img", "convert -S x a.img o.img", "convert -S 3 a.img o.img",
        // an unknown letter inside a cluster: getopt names the file it last stepped over, else the word before
        "info -Zq a.img", "info a.img -Zq", "info -U a.img -Zq", "info a.img -U -Zq", "info -f raw -Zq a.img",
        "info -UZq a.img", "check -q -Zq a.img", "map -UZ a.img", "info a.img b.img -Zq"})
    void severalProblemsGetQemuImgsFirstMessage(String line) throws IOException {
        Files.write(dir.resolve("a.img"), new byte[65536]);
        String[] args = line.split(" ");
        for (int i = 0; i < args.length; i++) {
            if (args[i].endsWith(".img")) {
                args[i] = dir.resolve(args[i]).toString();
            }
        }
        assertStatusAndStderrAsQemuImg(line, args);
    }

    @ParameterizedTest
    @ValueSource(strings = {"info", "io", "convert", "map", "snapshot", "bench"})
    void missingFileIsOneLine(String sub) {
        String missing = dir.resolve("missing.img").toString();
        String[] args = sub.equals("convert") ? new String[] {sub, missing, dir.resolve("o").toString()}
                : new String[] {sub, missing};
        // qemu-img's words, io's as qemu-io's
        String expected = switch (sub) {
            case "io" -> "imago: can't open device " + missing + ": Could not open '" + missing
                    + "': No such file or directory";
            default -> "imago: Could not open '" + missing + "': Could not open '" + missing
                    + "': No such file or directory";
        };
        assertEquals(expected, imago(args).failsWithOneLine());
    }

    @ParameterizedTest
    @ValueSource(strings = {"info", "io", "convert", "map", "snapshot", "bench"})
    void directoryIsOneLine(String sub) {
        String d = dir.toString();
        String[] args = sub.equals("convert") ? new String[] {sub, d, dir.resolve("o").toString()}
                : new String[] {sub, d};
        // qemu-img's words (its commands open these read-only), io's as qemu-io's
        String expected = switch (sub) {
            case "io" -> "imago: can't open device " + d + ": Could not open '" + d + "': Is a directory";
            default -> "imago: Could not open '" + d + "': 'file' driver requires '" + d + "' to be a regular file";
        };
        assertEquals(expected, imago(args).failsWithOneLine());
    }

    @ParameterizedTest
    @ValueSource(strings = {"info", "io", "convert", "map", "snapshot", "bench"})
    void unknownFormatNameIsOneLine(String sub) throws IOException {
        Path f = Files.write(dir.resolve("x.img"), new byte[4096]);
        String[] args = sub.equals("convert") ? new String[] {sub, "-f", "foo", f.toString(), dir.resolve("o").toString()}
                : new String[] {sub, "-f", "foo", f.toString()};
        String line = imago(args).failsWithOneLine();
        String start = switch (sub) {
            case "io" -> "imago: can't open device " + f + ": ";
            default -> "imago: Could not open '" + f + "': ";
        };
        assertTrue(line.startsWith(start + "Unknown driver 'foo' (installed formats: "), line);
    }

    @Test
    void badGateIsOneLine() {
        String line = imago("--gate=open", "info", "x").failsWithOneLine();
        assertTrue(line.contains("expected permissive, confined or deny"), line);
    }

    @Test
    void debugAddsTheStackTrace() {
        Run.Result r = imago("--debug", "info", dir.resolve("missing").toString());
        assertEquals(1, r.status());
        assertTrue(r.err().startsWith("imago: "), r.err());
        assertTrue(r.err().contains("\tat "), r.err());
        Run.Result sub = imago("info", "--debug", dir.resolve("missing").toString());
        assertTrue(sub.err().contains("\tat "), sub.err());
    }
}
