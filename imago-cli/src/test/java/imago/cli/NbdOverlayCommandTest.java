package imago.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code imago nbd -s}: clients write to a temporary overlay, and the image and the temporary directory stay. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class NbdOverlayCommandTest {
    @TempDir
    Path dir;

    private static Set<Path> overlays() throws Exception {
        try (Stream<Path> s = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            return s.filter(p -> p.getFileName().toString().startsWith("imago-nbd-snapshot-"))
                    .collect(Collectors.toSet());
        }
    }

    @Test
    void writesGoToATemporaryOverlay() throws Exception {
        Qemu.tool("qemu-io");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "d.qcow2", "4M");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 7 64k 64k", "d.qcow2");
        byte[] before = Files.readAllBytes(dir.resolve("d.qcow2"));
        Set<Path> overlaysBefore = overlays();
        Path socket = dir.resolve("s.sock");
        CompletableFuture<Run.Result> run = CompletableFuture.supplyAsync(() -> Run.imago("nbd", "-s", "-e", "2",
                "-k", socket.toString(), dir.resolve("d.qcow2").toString()));
        for (int i = 0; i < 3000 && !Files.exists(socket) && !run.isDone(); i++) {
            Thread.sleep(10);
        }
        assertTrue(Files.exists(socket), () -> "no socket: " + (run.isDone() ? run.join().err() : "running"));
        String uri = "nbd+unix:///?socket=" + socket;
        // the export is writable, and holds the image's data under the client's writes
        try (Image image = Imago.opener().location(NbdLocation.of(uri)).writable(true).open()) {
            byte[] nine = new byte[4096];
            Arrays.fill(nine, (byte) 9);
            image.write(ByteBuffer.wrap(nine), 64 << 10);
            image.flush();
            Qemu.ok(dir, "qemu-io", "-f", "raw", "-r", "-c", "read -P 9 64k 4k", "-c", "read -P 7 68k 60k", "-c",
                    "read -P 0 0 64k", uri);
        }
        run.get(30, TimeUnit.SECONDS).ok();
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("d.qcow2")), "the image is unchanged");
        assertEquals(overlaysBefore, overlays(), "the overlay is deleted");
        Qemu.ok(dir, "qemu-img", "check", "-q", "d.qcow2");
    }
}
