package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Image locks as QEMU 7.2 takes them per format and tool, against a file another process holds: QEMU's raw driver
 * passes its user's permissions through, and qemu-img and qemu-io share writes on a raw file, so other readers and
 * writers open it; a qemu-img convert source and qcow2 (whose metadata a second writer would corrupt) keep writers
 * out. Each holder (qemu-io, qemu-nbd, or imago itself) is sampled with openers run through both qemu-img (or
 * qemu-io) and imago: same exit status and messages, and the status QEMU gives is pinned so the test cannot agree on
 * nothing.
 */
class RawLocksDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    @BeforeAll
    static void images() throws Exception {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", "held.raw", "1M");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", "src.raw", "1M");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "held.qcow2", "1M");
        both = new CliDifferential(dir);
    }

    /**
     * Openers of a held raw file; each line ends with the statuses QEMU gives under the holders (a writer: qemu-io or
     * imago io; qemu-nbd; a reader), 1 where the lock refuses.
     */
    private static final List<String> RAW_OPENERS = List.of(
            "info|-f raw held.raw|0 0 0",
            "map|held.raw|0 0 0",
            "convert|-n -f raw -O raw src.raw held.raw|0 0 0",
            "convert|-f raw -O raw held.raw OUT|1 1 0",
            "resize|-f raw held.raw 1M|0 1 0",
            "resize|held.raw 1M|0 1 0",
            "io|-f raw -c write~0~512 held.raw|0 0 0",
            "io|-r -c read~0~512 held.raw|0 0 0");

    @ParameterizedTest
    @ValueSource(strings = {"qemu-io -f raw", "qemu-io", "qemu-nbd -f raw", "qemu-io -r -f raw", "imago -f raw",
        "imago", "imago -r -f raw"})
    void rawFileHeld(String holder) throws Exception {
        int column = holder.contains("-r") ? 2 : holder.startsWith("qemu-nbd") ? 1 : 0;
        try (Held _ = hold(holder, "held.raw")) {
            for (String opener : RAW_OPENERS) {
                String[] p = opener.split("\\|");
                agree(p[0], p[1], Integer.parseInt(p[2].split(" ")[column]), holder);
            }
        }
    }

    /** qcow2 keeps writers out whoever holds it: a writer refuses every open, a reader refuses writers. */
    @ParameterizedTest
    @ValueSource(strings = {"qemu-io -f qcow2", "imago -f qcow2", "imago -r"})
    void qcow2FileHeld(String holder) throws Exception {
        int readers = holder.contains("-r") ? 0 : 1;
        try (Held _ = hold(holder, "held.qcow2")) {
            agree("info", "held.qcow2", readers, holder);
            agree("convert", "-f qcow2 -O raw held.qcow2 OUT", readers, holder);
            agree("io", "-f qcow2 -c write~0~512 held.qcow2", 1, holder);
            agree("resize", "-f qcow2 held.qcow2 1M", 1, holder);
        }
    }

    /** Runs the line through QEMU's tool and imago: the status QEMU gives is {@code expected}, and imago's agrees. */
    private static void agree(String subcommand, String line, int expected, String holder) throws Exception {
        String what = holder + " holds; " + subcommand + " " + line;
        if (subcommand.equals("io")) {
            // a word's ~ is a space: qemu-io's -c takes one argument
            String[] args = both.command("io", line, dir.resolve("unused"));
            for (int i = 0; i < args.length; i++) {
                args[i] = args[i].replace('~', ' ');
            }
            Object[] qemuIo = new Object[args.length];
            qemuIo[0] = Qemu.io();
            System.arraycopy(args, 1, qemuIo, 1, args.length - 1);
            Qemu.Output theirs = Qemu.run(dir, qemuIo);
            Run.Result mine = Run.imago(args);
            assertEquals(expected, theirs.status(), () -> what + ": " + theirs.err());
            assertEquals(theirs.status(), mine.status(), () -> what + ": " + mine.err());
            assertEquals(theirs.err().replace("qemu-io: ", ""), mine.err().replace("imago: ", ""), what);
        } else {
            CliDifferential.Outcome o = both.agree(subcommand, line, "raw");
            assertEquals(expected, o.qemu().status(), () -> what + ": " + o.qemu().err());
        }
    }

    /** A holder of a file's locks until closed. */
    private interface Held extends AutoCloseable {
        @Override
        void close() throws IOException;
    }

    /** Opens {@code file} as {@code holder} says (a QEMU tool and its options, or imago's) and waits for its locks. */
    private static Held hold(String holder, String file) throws Exception {
        Path path = dir.resolve(file);
        List<String> words = List.of(holder.split(" "));
        List<String> options = words.subList(1, words.size());
        if (words.getFirst().equals("imago")) {
            imago.probe.Opener opener = Imago.opener().path(path).writable(!options.contains("-r"));
            if (options.contains("-f")) {
                opener.format(options.get(options.indexOf("-f") + 1));
            }
            Image image = opener.open();
            return image::close;
        }
        List<String> command = new java.util.ArrayList<>();
        command.add(Qemu.tool(words.getFirst()).toString());
        command.addAll(options);
        if (words.getFirst().equals("qemu-io")) {
            command.addAll(List.of("-c", "sleep 600000")); // ended by destroy below
        }
        command.add(path.toString());
        Path err = Files.createTempFile(dir, "holder", ".txt");
        Process p = new ProcessBuilder(command).directory(dir.toFile())
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!locked(path)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                p.destroyForcibly().waitFor();
                fail(holder + " did not lock " + file + ": " + Files.readString(err, StandardCharsets.UTF_8));
            }
            Thread.sleep(10);
        }
        return () -> {
            p.destroy();
            try {
                if (!p.waitFor(10, TimeUnit.SECONDS)) {
                    p.destroyForcibly().waitFor();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while stopping " + holder, e);
            }
        };
    }

    /** Whether a process holds a lock on {@code file}: its inode in {@code /proc/locks}. */
    private static boolean locked(Path file) throws IOException {
        String inode = ":" + Files.getAttribute(file, "unix:ino") + " ";
        return Files.readAllLines(Path.of("/proc/locks")).stream().anyMatch(l -> l.contains(inode));
    }
}
