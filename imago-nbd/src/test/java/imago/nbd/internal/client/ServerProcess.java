package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.fail;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** An NBD server process (qemu-nbd, nbdkit) listening on a Unix socket until closed. */
final class ServerProcess implements AutoCloseable {
    private final Process process;
    private final Path log;
    final Path socket;

    /**
     * Starts {@code command} and waits for {@code ready}, its pid file, to appear: both servers write it once they
     * listen (nbdkit's socket file appears before it does).
     */
    private ServerProcess(Path dir, Path socket, Path ready, List<String> command)
            throws IOException, InterruptedException {
        Qemu.tool(command.get(0));
        this.socket = socket;
        this.log = dir.resolve(command.get(0) + "-" + socket.getFileName() + ".log");
        process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        for (int i = 0; i < 400 && !Files.exists(ready); i++) {
            if (!process.isAlive()) {
                fail(command + " failed: " + Files.readString(log));
            }
            Thread.sleep(10);
        }
        if (!Files.exists(ready)) {
            close();
            fail(command + " did not create " + ready);
        }
    }

    /** {@code qemu-nbd -t -k SOCKET ARGS...}. */
    static ServerProcess qemuNbd(Path dir, String name, Object... args) throws IOException, InterruptedException {
        Path socket = dir.resolve(name + ".sock");
        Path pid = dir.resolve(name + ".pid");
        List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-k", socket.toString(), "--pid-file",
                pid.toString()));
        for (Object a : args) {
            cmd.add(a.toString());
        }
        return new ServerProcess(dir, socket, pid, cmd);
    }

    /** {@code nbdkit -f -U SOCKET ARGS...} (plugin and its parameters, filters). */
    static ServerProcess nbdkit(Path dir, String name, Object... args) throws IOException, InterruptedException {
        Path socket = dir.resolve(name + ".sock");
        Path pid = dir.resolve(name + ".pid");
        List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "-U", socket.toString(), "-P", pid.toString()));
        for (Object a : args) {
            cmd.add(a.toString());
        }
        return new ServerProcess(dir, socket, pid, cmd);
    }

    /** {@code nbd+unix:///EXPORT?socket=PATH}. */
    String uri(String export) {
        return "nbd+unix:///" + export + "?socket=" + socket;
    }

    String uri() {
        return uri("");
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                fail("the server did not stop");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}
