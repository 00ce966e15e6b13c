package imago.cli;

import static org.junit.jupiter.api.Assertions.fail;

import imago.cli.command.Cli;
import imago.testkit.Qemu;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A qemu-io that holds its image open while a test looks at it: imago's in this JVM, or QEMU's as a process. Its
 * commands come from standard input, one at a time ({@link #run}); it ends when that input is closed
 * ({@link #close}). What it has open is read from {@code /proc} ({@link #openFlags}).
 */
final class HeldOpen implements AutoCloseable {
    private static final long TIMEOUT_MS = 30_000;

    private final OutputStream commands;
    private final ByteArrayOutputStream out;
    private final String fds;
    private final Thread thread;
    private final Process process;

    private HeldOpen(OutputStream commands, ByteArrayOutputStream out, String fds, Thread thread, Process process) {
        this.commands = commands;
        this.out = out;
        this.fds = fds;
        this.thread = thread;
        this.process = process;
    }

    /** imago as qemu-io, in this JVM, with {@code args}. */
    static HeldOpen imago(String... args) throws IOException {
        PipedOutputStream commands = new PipedOutputStream();
        InputStream in = new PipedInputStream(commands, 1 << 16);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream printed = new PrintStream(out, true, StandardCharsets.UTF_8);
        Thread t = Thread.ofPlatform().daemon().start(() -> Cli.run("qemu-io", in, printed, printed, args));
        return new HeldOpen(commands, out, "/proc/self", t, null);
    }

    /** QEMU's qemu-io, a process in {@code dir}, with {@code args}. */
    static HeldOpen qemu(Path dir, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Qemu.io().toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread.ofPlatform().daemon().start(() -> {
            try {
                p.getInputStream().transferTo(out);
            } catch (IOException e) {
                // the process ended
            }
        });
        return new HeldOpen(p.getOutputStream(), out, "/proc/" + p.pid(), null, p);
    }

    /** Sends {@code command} and waits until what it printed so far contains {@code printed}. */
    void run(String command, String printed) throws IOException, InterruptedException {
        commands.write((command + "\n").getBytes(StandardCharsets.UTF_8));
        commands.flush();
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
        while (!output().contains(printed)) {
            if (System.nanoTime() > end) {
                fail("'" + command + "' did not print '" + printed + "':\n" + output());
            }
            Thread.sleep(10);
        }
    }

    /** What was printed so far (standard output and error). */
    String output() {
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The flags ({@code O_*}, from {@code fdinfo}) of each descriptor the holder has open on {@code file}. */
    List<Integer> openFlags(Path file) throws IOException {
        Path real = file.toRealPath();
        List<Integer> flags = new ArrayList<>();
        try (Stream<Path> all = Files.list(Path.of(fds, "fd"))) {
            for (Path fd : all.toList()) {
                Path target;
                try {
                    target = Files.readSymbolicLink(fd);
                } catch (IOException | UncheckedIOException e) {
                    continue; // closed meanwhile
                }
                if (target.equals(real)) {
                    for (String line : Files.readAllLines(Path.of(fds, "fdinfo", fd.getFileName().toString()))) {
                        if (line.startsWith("flags:")) {
                            flags.add(Integer.parseInt(line.substring("flags:".length()).strip(), 8));
                        }
                    }
                }
            }
        }
        return flags;
    }

    @Override
    public void close() throws IOException {
        commands.close();
        try {
            if (thread != null) {
                thread.join(TIMEOUT_MS);
            }
            if (process != null && !process.waitFor(TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            // (an AutoCloseable's close should not throw InterruptedException)
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while the holder ended", e);
        }
    }
}
