package imago.cli;

import imago.cli.command.Cli;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The training run of the JDK's ahead-of-time cache for the {@code imago} command (JEP 483/514/515):
 * the build runs this class once with {@code -XX:AOTCacheOutput}, and the JVM stores the classes it
 * loaded and linked, and the profiles of the methods it ran, for {@code ./imago} to start from. It runs
 * the common commands in one JVM, as a user would one by one: {@code info}, {@code map},
 * {@code check}, {@code compare}, {@code convert} (plain, deflate and zstd) and {@code io} on qcow2, raw
 * and cow images it creates in a temporary directory, which it deletes afterwards.
 *
 * <p>Not part of the command: {@code java -m imago.cli/imago.cli.AotTraining} with no arguments.
 */
public final class AotTraining {

    private AotTraining() {
    }

    /**
     * Runs the training commands; exits with status 1 if any of them fails, so that the build notices.
     *
     * @param args none
     * @throws IOException if the temporary directory cannot be made or deleted
     */
    public static void main(String[] args) throws IOException {
        Main.configureLogging(args);
        Path dir = Files.createTempDirectory("imago-aot-training");
        try {
            List<String> failed = run(dir);
            if (!failed.isEmpty()) {
                System.err.println("imago AOT training: failed: " + String.join("; ", failed));
                System.exit(1);
            }
        } finally {
            deleteTree(dir);
        }
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
