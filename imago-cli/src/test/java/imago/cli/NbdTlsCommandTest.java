package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.nbd.NbdLocation;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.TlsFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code imago nbd --object tls-creds-x509,... --tls-creds=ID}: served to nbdinfo and to imago's own client over
 * {@code nbds+unix://}, and qemu-nbd's messages for credentials that are missing, unknown or a client's.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NbdTlsCommandTest {
    @TempDir
    Path dir;

    private String object(Path credentials, String endpoint) {
        return "tls-creds-x509,id=tls0,dir=" + credentials + ",endpoint=" + endpoint;
    }

    @Test
    void servesOverTlsToNbdinfoAndToImago() throws Exception {
        Qemu.tool("nbdinfo");
        TlsFiles tls = TlsFiles.create(dir.resolve("certs"));
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "d.qcow2", "4M");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 7 64k 64k", "d.qcow2");
        Path socket = dir.resolve("tls.sock");
        CompletableFuture<Run.Result> run = CompletableFuture.supplyAsync(() -> Run.imago("nbd", "-k",
                socket.toString(), "-e", "3", "--object", object(tls.server(), "server"), "--tls-creds=tls0",
                dir.resolve("d.qcow2").toString()));
        for (int i = 0; i < 3000 && !Files.exists(socket) && !run.isDone(); i++) {
            Thread.sleep(10);
        }
        assertTrue(Files.exists(socket), () -> "no socket: " + (run.isDone() ? run.join().err() : "running"));
        String uri = "nbds+unix:///?socket=" + socket + "&tls-certificates=" + tls.client();
        // a client of imago's own holds the server up: without -t it stops when its last client leaves
        try (Image held = Imago.opener().location(NbdLocation.of(uri)).open()) {
            assertEquals(4 << 20, held.size());
            String info = Qemu.ok(dir, "nbdinfo", uri);
            assertTrue(info.contains("with TLS") && info.contains("export-size: 4194304"), info);
            Run.imago("io", "-f", "raw", "-r", "-c", "read -P 7 64k 64k", uri).ok();
        }
        run.get(30, TimeUnit.SECONDS).ok();
    }

    @Test
    void badCredentialsGetQemuNbdsMessages() throws Exception {
        Qemu.tool("qemu-nbd");
        TlsFiles tls = TlsFiles.create(dir.resolve("certs"));
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "d.raw", "1M");
        List<List<String>> cases = List.of(
                List.of("--tls-creds=nope"),
                List.of("--object", object(tls.client(), "client"), "--tls-creds=tls0"),
                List.of("--object", object(dir.resolve("none"), "server"), "--tls-creds=tls0"));
        for (List<String> args : cases) {
            List<String> qemu = new ArrayList<>(List.of("qemu-nbd", "-k", dir.resolve("q.sock").toString()));
            qemu.addAll(args);
            qemu.add(dir.resolve("d.raw").toString());
            Qemu.Output theirs = Qemu.run(dir, qemu.toArray());
            List<String> ours = new ArrayList<>(List.of("nbd", "-k", dir.resolve("i.sock").toString()));
            ours.addAll(args);
            ours.add(dir.resolve("d.raw").toString());
            String line = Run.imago(ours.toArray(String[]::new)).failsWithOneLine();
            assertEquals(1, theirs.status());
            assertEquals(theirs.err().strip().replaceFirst("^qemu-nbd: ", ""), line.replaceFirst("^imago: ", ""),
                    args.toString());
        }
    }
}
