package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code imago nbd}: qemu-nbd's command line, what clients see of it (the same as of qemu-nbd), its stop when the
 * last client leaves, and qemu-nbd's messages for bad arguments.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class NbdCommandTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        for (String t : new String[] {"qemu-img", "qemu-io", "qemu-nbd", "nbdinfo"}) {
            Qemu.tool(t);
        }
    }

    /** Runs {@code imago nbd args} in the background and waits for its socket. */
    private CompletableFuture<Run.Result> serve(Path socket, String... args) throws InterruptedException {
        String[] all = new String[args.length + 3];
        all[0] = "nbd";
        all[1] = "-k";
        all[2] = socket.toString();
        System.arraycopy(args, 0, all, 3, args.length);
        CompletableFuture<Run.Result> run = CompletableFuture.supplyAsync(() -> Run.imago(all));
        for (int i = 0; i < 3000 && !Files.exists(socket) && !run.isDone(); i++) {
            Thread.sleep(10);
        }
        assertTrue(Files.exists(socket), () -> "no socket: " + (run.isDone() ? run.join().err() : "still running"));
        return run;
    }

    private static String uri(Path socket) {
        return "nbd+unix:///?socket=" + socket;
    }

    @Test
    void servesOneClientAsQemuNbdDoesAndStops() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "d.qcow2", "4M");
        Qemu.ok(dir, "qemu-img", "bitmap", "--add", "d.qcow2", "bm");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 1 64k 64k", "-c", "write -z 1M 1M", "d.qcow2");
        Path img = dir.resolve("d.qcow2");
        Path theirs = dir.resolve("q.sock");
        Process qemu = new ProcessBuilder("qemu-nbd", "-r", "-k", theirs.toString(), "-B", "bm", "-A", img.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
        try {
            for (int i = 0; i < 3000 && !Files.exists(theirs); i++) {
                Thread.sleep(10);
            }
            for (String map : new String[] {"--map", "--map=qemu:dirty-bitmap:bm", "--map=qemu:allocation-depth"}) {
                Path ours = dir.resolve("i.sock");
                CompletableFuture<Run.Result> run = serve(ours, "-r", "-B", "bm", "-A", img.toString());
                String actual = Qemu.ok(dir, "nbdinfo", map, uri(ours));
                // without -t the server stops when its client leaves, and removes its socket
                Run.Result r = run.get(30, TimeUnit.SECONDS).ok();
                assertEquals("", r.out());
                assertFalse(Files.exists(ours));
                if (map.equals("--map")) {
                    assertEquals(actual, Qemu.ok(dir, "nbdinfo", map, uri(theirs)));
                } else {
                    // qemu-nbd without -t stops after one client too: restart it for each map
                    qemu.waitFor(10, TimeUnit.SECONDS);
                    Files.deleteIfExists(theirs);
                    qemu = new ProcessBuilder("qemu-nbd", "-r", "-k", theirs.toString(), "-B", "bm", "-A",
                            img.toString()).redirectErrorStream(true)
                            .redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
                    for (int i = 0; i < 3000 && !Files.exists(theirs); i++) {
                        Thread.sleep(10);
                    }
                    assertEquals(Qemu.ok(dir, "nbdinfo", map, uri(theirs)), actual, map);
                }
                assertTrue(actual.lines().count() >= 2, actual);
            }
        } finally {
            qemu.destroy();
            qemu.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void writesThroughTheServerKeepTheImageAndItsBitmapTrue() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "w.qcow2", "4M");
        Qemu.ok(dir, "qemu-img", "bitmap", "--add", "w.qcow2", "bm");
        Path sock = dir.resolve("w.sock");
        CompletableFuture<Run.Result> run = serve(sock, "-f", "qcow2", "--discard=unmap", "--detect-zeroes=unmap",
                dir.resolve("w.qcow2").toString());
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 128k 8k", "-c", "write -P 0 1M 64k",
                "-c", "read -P 0x5a 128k 8k", uri(sock));
        run.get(30, TimeUnit.SECONDS).ok();
        assertEquals("", Qemu.ok(dir, "qemu-img", "check", "-q", "w.qcow2"));
        String map = Qemu.ok(dir, "qemu-img", "map", "--output=json", "w.qcow2");
        assertTrue(map.contains("\"start\": 131072, \"length\": 8192, \"depth\": 0, \"present\": true, "
                + "\"zero\": false, \"data\": true"), map);
        // the all-zero write became a zero cluster (detect-zeroes), not data
        assertTrue(map.contains("\"start\": 1048576, \"length\": 65536, \"depth\": 0, \"present\": true, "
                + "\"zero\": true, \"data\": false}"), map);
        String info = Qemu.ok(dir, "qemu-img", "info", "w.qcow2");
        assertFalse(info.contains("in-use"), info);
        // the bitmap recorded both writes (qemu-nbd -r reads it back)
        Path q = dir.resolve("q.sock");
        Process qemu = new ProcessBuilder("qemu-nbd", "-r", "-k", q.toString(), "-B", "bm",
                dir.resolve("w.qcow2").toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
        try {
            for (int i = 0; i < 3000 && !Files.exists(q); i++) {
                Thread.sleep(10);
            }
            assertEquals(String.join("\n",
                    "         0      131072    0  clean",
                    "    131072       65536    1  dirty",
                    "    196608      851968    0  clean",
                    "   1048576       65536    1  dirty",
                    "   1114112     3080192    0  clean", ""),
                    Qemu.ok(dir, "nbdinfo", "--map=qemu:dirty-bitmap:bm", uri(q)));
        } finally {
            qemu.destroy();
            qemu.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * {@code -l SNAPSHOT} that cannot be loaded: an image whose format has no internal snapshots (raw, vpc; also
     * named with --image-opts), a qcow2 image without that one: qemu-nbd's words and status.
     */
    @Test
    void snapshotsThatCannotBeLoadedAsQemuNbd() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "r.img", "1M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "v.vhd", "1M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "q.qcow2", "1M");
        String sock = dir.resolve("l.sock").toString();
        for (String[] args : new String[][] {{"-l", "snap", dir.resolve("r.img").toString()},
            {"-f", "raw", "-r", "-l", "snap", dir.resolve("r.img").toString()},
            {"-l", "snap", dir.resolve("v.vhd").toString()}, {"-l", "snap", dir.resolve("q.qcow2").toString()},
            {"--image-opts", "-l", "snap", "driver=raw,file.filename=" + dir.resolve("r.img")}}) {
            String[] all = new String[args.length + 3];
            all[0] = "nbd";
            all[1] = "-k";
            all[2] = sock;
            System.arraycopy(args, 0, all, 3, args.length);
            Object[] theirs = all.clone();
            theirs[0] = "qemu-nbd";
            Qemu.Output q = Qemu.run(dir, theirs);
            Run.Result r = Run.imago(all);
            assertEquals(1, q.status(), q.err());
            assertEquals(q.status(), r.status(), r.err());
            assertEquals(q.err().replace("qemu-nbd: ", "PROGRAM: "), r.err().replace("imago: ", "PROGRAM: "),
                    String.join(" ", args));
            assertTrue(r.err().contains("Failed to load snapshot: "), r.err());
            // (qemu-nbd has bound its socket by then and leaves the file behind; imago has not)
            Files.deleteIfExists(Path.of(sock));
        }
    }

    @Test
    void badArgumentsGetQemuNbdsMessages() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "e.qcow2", "1M");
        String img = dir.resolve("e.qcow2").toString();
        String sock = dir.resolve("e.sock").toString();
        assertEquals("imago: Invalid number of arguments", Run.imago("nbd").failsWithOneLine());
        assertEquals("imago: Invalid discard mode `foo'", Run.imago("nbd", "-k", sock, "--discard=foo", img)
                .failsWithOneLine());
        assertEquals("imago: setting detect-zeroes to unmap is not allowed without setting discard operation to "
                + "unmap", Run.imago("nbd", "-k", sock, "--detect-zeroes=unmap", img).failsWithOneLine());
        assertEquals("imago: Failed to parse detect_zeroes mode: invalid parameter value: bar",
                Run.imago("nbd", "-k", sock, "--detect-zeroes=bar", img).failsWithOneLine());
        assertEquals("imago: Invalid shared device number '-1'", Run.imago("nbd", "-k", sock, "-e", "-1", img)
                .failsWithOneLine());
        assertEquals("imago: Bitmap 'nobm' is not found", Run.imago("nbd", "-k", sock, "-B", "nobm", img)
                .failsWithOneLine());
        assertTrue(Run.imago("nbd", "-k", sock, "nofile.img").failsWithOneLine().contains("No such file"));
        assertFalse(Files.exists(Path.of(sock)));
    }
}
