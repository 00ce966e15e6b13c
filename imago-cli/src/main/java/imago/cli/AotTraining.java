package imago.cli;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.cli.command.Cli;
import imago.probe.Imago;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * The training runs of the JDK's ahead-of-time caches for the {@code imago} command (JEP 483/514/515):
 * the build runs this class with {@code -XX:AOTMode=record}, and the JVM stores the classes it loaded
 * and linked, and the profiles of the methods it ran, for {@code ./imago} to start from. With no
 * argument it runs the common commands in one JVM, as a user would one by one: {@code info}, {@code map},
 * {@code check}, {@code compare}, {@code convert} (plain, deflate and zstd) and {@code io} on qcow2, raw
 * and cow images it creates in a temporary directory, which it deletes afterwards.
 *
 * <p>With the argument {@code info} it trains the cache of the commands scripts run once per image:
 * {@code --version}, and {@code info} and {@code map} in the plain forms that run without picocli, on
 * images it makes through the library. The JVM loads every class of its cache when it starts, used or
 * not, so this smaller cache (~2260 classes instead of ~3040: no picocli, no convert) starts those
 * commands ~10 ms of CPU sooner; the launchers pick it for them.
 *
 * <p>Not part of the command: {@code java -m imago.cli/imago.cli.AotTraining [info]}.
 */
public final class AotTraining {

    private AotTraining() {
    }

    /**
     * Runs the training commands; exits with status 1 if any of them fails, so that the build notices.
     *
     * @param args none, or {@code info} for the training of the cache of {@code --version}, {@code info} and
     *        {@code map}
     * @throws IOException if the temporary directory or the images of the {@code info} training cannot be made,
     *         or the directory deleted
     */
    public static void main(String[] args) throws IOException {
        Main.configureLogging(args);
        Path dir = Files.createTempDirectory("imago-aot-training");
        try {
            List<String> failed = args.length == 1 && args[0].equals("info") ? runInfo(dir) : run(dir);
            if (!failed.isEmpty()) {
                System.err.println("imago AOT training: failed: " + String.join("; ", failed));
                System.exit(1);
            }
        } finally {
            deleteTree(dir);
        }
    }

    private static List<String> runInfo(Path dir) throws IOException {
        Path q = dir.resolve("a.qcow2");
        Path r = dir.resolve("a.raw");
        byte[] data = new byte[64 << 10];
        Arrays.fill(data, (byte) 0xab);
        for (Path image : List.of(q, r)) {
            // made through the library: the create and io commands would bring picocli into the cache
            Imago.create(image, image == q ? "qcow2" : "raw", CreateOptions.ofSize(64 << 20));
            try (Image open = Imago.opener().path(image).writable(true).open()) {
                open.write(ByteBuffer.wrap(data), 1 << 20);
            }
        }
        String[][] commands = {
            {"--version"},
            {"info", q.toString()},
            {"info", "--output=json", q.toString()},
            {"map", q.toString()},
            {"map", "--output=json", q.toString()},
            {"info", "--output=json", r.toString()},
            {"map", "--output=json", r.toString()},
            {"info", dir.resolve("missing.qcow2").toString()}, // fails, as it should: the error path
        };
        return runAll(commands);
    }

    private static List<String> run(Path dir) {
        String q = dir.resolve("a.qcow2").toString();
        String r = dir.resolve("a.raw").toString();
        String c = dir.resolve("a.cow").toString();
        String[][] commands = {
            {"--version"},
            {"--help"},
            {"info", "--help"},
            {"create", "-f", "qcow2", q, "64M"},
            {"io", "-c", "write -P 0xab 0 1M", "-c", "write -z 4M 64k", "-c", "read -P 0xab 512k 4k", q},
            {"info", q},
            {"info", "--output=json", q},
            {"map", q},
            {"map", "--output=json", q},
            {"check", q},
            {"check", "--output=json", q},
            {"convert", "-O", "raw", q, r},
            {"info", "--output=json", r},
            {"map", "--output=json", r},
            {"compare", q, r},
            {"convert", "-f", "raw", "-O", "qcow2", r, dir.resolve("b.qcow2").toString()},
            {"convert", "-c", "-O", "qcow2", q, dir.resolve("z.qcow2").toString()},
            {"convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", q, dir.resolve("s.qcow2").toString()},
            {"map", "--output=json", dir.resolve("s.qcow2").toString()},
            {"convert", "-O", "raw", dir.resolve("s.qcow2").toString(), dir.resolve("s.raw").toString()},
            {"create", "-f", "qcow2", "-b", q, "-F", "qcow2", dir.resolve("top.qcow2").toString()},
            {"map", "--output=json", dir.resolve("top.qcow2").toString()},
            {"create", "-f", "cow", c, "16M"},
            {"info", "--output=json", c},
            {"info", dir.resolve("missing.qcow2").toString()}, // fails, as it should: the error path
        };
        return runAll(commands);
    }

    /** Runs each command; the last one must fail, the others succeed. @return the ones that did not */
    private static List<String> runAll(String[][] commands) {
        Cli.invokedName(); // as Main does: the environment's classes (System.getenv) into the cache too
        PrintStream sink = new PrintStream(OutputStream.nullOutputStream(), false, StandardCharsets.UTF_8);
        List<String> failed = new ArrayList<>();
        for (int i = 0; i < commands.length; i++) {
            int status = Cli.run(sink, sink, commands[i]);
            boolean expected = i == commands.length - 1 ? status != Cli.OK : status == Cli.OK;
            if (!expected) {
                failed.add(String.join(" ", commands[i]) + " (status " + status + ")");
            }
        }
        return failed;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted((a, b) -> b.compareTo(a)).toList()) {
                Files.delete(p);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
