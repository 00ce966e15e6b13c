package imago.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The NBD tools the interoperability tests run, and a qemu-nbd run in the background. */
final class Tools {
    private Tools() {
    }

    /** Fails (IMAGO_REQUIRE_QEMU=1) or skips unless every tool the tests run is installed. */
    static void require() {
        for (String t : List.of("qemu-img", "qemu-io", "qemu-nbd", "nbdinfo", "nbdcopy")) {
            Qemu.tool(t);
        }
    }

    /** {@code nbd+unix:///NAME?socket=PATH}. */
    static String unixUri(Path socket, String export) {
        return "nbd+unix:///" + export + "?socket=" + socket;
    }

    /** Runs a tool, asserting success; its standard output. */
    static String ok(Path dir, Object... command) {
        return Qemu.ok(dir, command);
    }

    /** A qemu-nbd serving in the background until closed. */
    static final class QemuNbd implements AutoCloseable {
        private final Process process;

        QemuNbd(Path dir, Path socket, Object... args) throws IOException, InterruptedException {
            List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t", "-k", socket.toString()));
            for (Object a : args) {
                cmd.add(a.toString());
            }
            process = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
            for (int i = 0; i < 200 && !Files.exists(socket); i++) {
                if (!process.isAlive()) {
                    fail("qemu-nbd failed: " + Files.readString(dir.resolve("qemu-nbd.log")));
                }
                Thread.sleep(25);
            }
            if (!Files.exists(socket)) {
                fail("qemu-nbd did not create " + socket);
            }
        }

        @Override
        public void close() {
            process.destroy();
            try {
                assertEquals(true, process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS), "qemu-nbd stops");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }
}
