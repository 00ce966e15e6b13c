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
 * <p>With the arguments {@code info DIR} it trains the cache of the commands scripts run once per image:
 * {@code --version}, and {@code info} and {@code map} in the plain forms that run without picocli, on the
 * images that {@code images DIR} made beforehand, in another JVM. The JVM loads every class of its cache when
 * it starts, used or not, so this cache holds only what those commands load: no picocli, no convert, and
 * nothing of the training's own (no image writes, no temporary directory and its {@code SecureRandom}, no
 * file tree walk).
 *
 * <p>Not part of the command: {@code java -m imago.cli/imago.cli.AotTraining [images DIR | info DIR]}.
 */
public final class AotTraining {

    private AotTraining() {
    }

    /**
     * Runs the training commands; exits with status 1 if any of them fails, so that the build notices.
     *
     * @param args none for the training of the cache of every command; {@code images DIR} to make the images
     *        of the training of {@code --version}, {@code info} and {@code map}, and {@code info DIR} for that
     *        training
     * @throws IOException if a directory or an image cannot be made, or the temporary directory deleted
     */
    public static void main(String[] args) throws IOException {
        Main.configureLogging(args);
        if (args.length == 2 && args[0].equals("images")) {
            makeInfoImages(Path.of(args[1]));
            return;
        }
        List<String> failed;
        if (args.length == 2 && args[0].equals("info")) {
            failed = runInfo(Path.of(args[1]));
        } else if (args.length == 0) {
            Path dir = Files.createTempDirectory("imago-aot-training");
            try {
                failed = run(dir);
            } finally {
                deleteTree(dir);
            }
        } else {
            System.err.println("usage: AotTraining [images DIR | info DIR]");
            failed = List.of("usage");
        }
        if (!failed.isEmpty()) {
            System.err.println("imago AOT training: failed: " + String.join("; ", failed));
            System.exit(1);
        }
    }

    /** The images {@link #runInfo} reads, made through the library: the create and io commands would bring picocli in. */
    private static void makeInfoImages(Path dir) throws IOException {
        Files.createDirectories(dir);
        byte[] data = new byte[64 << 10];
        Arrays.fill(data, (byte) 0xab);
        for (String format : List.of("qcow2", "raw")) {
            Path image = dir.resolve("a." + format);
            Files.deleteIfExists(image);
            Imago.create(image, format, CreateOptions.ofSize(64 << 20));
            try (Image open = Imago.opener().path(image).writable(true).open()) {
                open.write(ByteBuffer.wrap(data), 1 << 20);
            }
        }
    }

    private static List<String> runInfo(Path dir) {
        String q = dir.resolve("a.qcow2").toString();
        String r = dir.resolve("a.raw").toString();
        String[][] commands = {
            {"--version"},
            {"info", q},
            {"info", "--output=json", q},
            {"map", q},
            {"map", "--output=json", q},
            {"info", "--output=json", r},
            {"map", "--output=json", r},
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
            {"convert", "-t", "unsafe", "-f", "qcow2", "-O", "raw", q, r}, // unsynced: NoSyncStorage, no jar opened
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
