package imago.cli.command;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * qemu-nbd's {@code --fork} for a JVM, which cannot fork: the command starts itself again without the option, in a
 * session of its own (setsid) with no terminal streams, and exits 0 once that process says it listens; if it fails
 * first, its messages and exit status are this command's.
 */
final class Daemon {
    /** The file the started server writes once it listens: how it tells the command that waits for it. */
    static final String READY_VARIABLE = "IMAGO_NBD_READY";

    private Daemon() {
    }

    /**
     * Starts this JVM's command line again without {@code --fork} and waits until it listens or fails.
     *
     * @return 0 once it listens, else its exit status (its messages printed on this command's standard error)
     * @throws IOException if it cannot be started
     */
    static int start(Session session) throws IOException, InterruptedException {
        ProcessHandle.Info self = ProcessHandle.current().info();
        if (self.command().isEmpty() || self.arguments().isEmpty()) {
            throw new CliException(null, "--fork: this system does not tell the command line of a process");
        }
        List<String> command = new ArrayList<>();
        Path setsid = Path.of("/usr/bin/setsid");
        if (Files.isExecutable(setsid)) {
            command.add(setsid.toString());
        }
        command.add(self.command().get());
        for (String a : self.arguments().get()) {
            if (!a.equals("--fork")) {
                command.add(a);
            }
        }
        Path ready = Files.createTempFile("imago-nbd-ready-", "");
        Path log = Files.createTempFile("imago-nbd-", ".log");
        try {
            ProcessBuilder pb = new ProcessBuilder(command).redirectInput(new File("/dev/null"))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile());
            pb.environment().put(READY_VARIABLE, ready.toString());
            Process server = pb.start();
            while (true) {
                if (Files.size(ready) > 0) {
                    return Cli.OK;
                }
                if (!server.isAlive()) {
                    session.err().print(Files.readString(log, StandardCharsets.UTF_8));
                    return server.exitValue();
                }
                Thread.sleep(10);
            }
        } finally {
            Files.deleteIfExists(ready);
            // the server may still write to its log: unlinked, the file goes when it closes it
            Files.deleteIfExists(log);
        }
    }

    /** In a server started by {@link #start}, tells the command that waits that it listens now. */
    static void signalReady() throws IOException {
        String ready = System.getenv(READY_VARIABLE);
        if (ready == null) {
            return;
        }
        Path file = Path.of(ready);
        Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(temporary, "ready\n", StandardCharsets.US_ASCII);
        Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
