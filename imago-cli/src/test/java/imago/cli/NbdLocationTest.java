package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import imago.testkit.Qemu;
import imago.testkit.QemuMap;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD exports wherever the commands take a file: {@code info}, {@code map}, {@code convert}, {@code compare},
 * {@code check} and {@code io} on exports of qemu-nbd (read-only and writable) and nbdkit, each compared with what
 * qemu-img and qemu-io print or make from the same URI.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NbdLocationTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        for (String t : new String[] {"qemu-img", "qemu-io", "qemu-nbd", "nbdkit"}) {
            Qemu.tool(t);
        }
    }

    /** A server process on a Unix socket in the test directory, stopped on close. */
    private final class Server implements AutoCloseable {
        final Process process;
        final String uri;

        Server(String name, String... command) throws IOException, InterruptedException {
            Path socket = dir.resolve(name + ".sock");
            // the servers write their pid files once they listen (nbdkit's socket file appears before it does)
            Path ready = dir.resolve(name + ".pid");
            List<String> cmd = new ArrayList<>(List.of(command));
            cmd.add(1, command[0].equals("nbdkit") ? "-U" : "-k");
            cmd.add(2, socket.toString());
            if (command[0].equals("nbdkit")) {
                cmd.addAll(1, List.of("-f", "-P", ready.toString()));
            } else {
                cmd.addAll(1, List.of("--pid-file", ready.toString()));
            }
            process = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(dir.resolve(name + ".log").toFile()).start();
            for (int i = 0; i < 500 && !Files.exists(ready); i++) {
                if (!process.isAlive()) {
                    fail(cmd + ": " + Files.readString(dir.resolve(name + ".log")));
                }
                Thread.sleep(10);
            }
            uri = "nbd+unix:///?socket=" + socket;
        }

        @Override
        public void close() {
            process.destroy();
            try {
                assertTrue(process.waitFor(10, TimeUnit.SECONDS), "the server stops");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }

    /** A qcow2 image with data, zero clusters, a compressed cluster and unallocated space. */
    private Path source() {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "src.qcow2", "64M");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0x11 1M 3M", "-c", "write -z 8M 1M", "-c", "write -c -P 3 20M 64k",
                "-c", "write -P 0x22 33M 5000", "src.qcow2");
        return dir.resolve("src.qcow2");
    }

    @Test
    void aReadOnlyQemuNbdExportReadsAsQemuImgReadsIt() throws Exception {
        Path src = source();
        try (Server s = new Server("ro", "qemu-nbd", "-t", "-r", "-e", "8", "-f", "qcow2", src.toString())) {
            assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", s.uri),
                    Run.imago("map", "--output=json", s.uri).ok().out());
            assertEquals(Qemu.ok(dir, "qemu-img", "info", s.uri), Run.imago("info", s.uri).ok().out());

            Run.imago("convert", "-O", "qcow2", s.uri, dir.resolve("out.qcow2").toString()).ok();
            Qemu.ok(dir, "qemu-img", "compare", "src.qcow2", "out.qcow2");
            // sparse: the zeroes of the export are not written, as qemu-img convert leaves them
            Qemu.ok(dir, "qemu-img", "convert", "-O", "qcow2", s.uri, "theirs.qcow2");
            String ours = Qemu.ok(dir, "qemu-img", "map", "--output=json", "out.qcow2");
            assertEquals(QemuMap.kinds(Qemu.ok(dir, "qemu-img", "map", "--output=json", "theirs.qcow2")),
                    QemuMap.kinds(ours));
            assertTrue(QemuMap.parse(ours).stream().anyMatch(e -> !e.data()), ours);

            assertEquals("Images are identical.\n", Run.imago("compare", s.uri, src.toString()).ok().out());
            assertEquals(0, Run.imago("compare", "-q", s.uri, dir.resolve("out.qcow2").toString()).status());
            assertEquals(Qemu.run(dir, "qemu-img", "check", s.uri).status(), Run.imago("check", s.uri).status());
            Run.Result read = Run.imago("io", "-r", "-c", "read -P 0x11 1M 3M", "-c", "read -P 0 8M 1M", s.uri).ok();
            assertTrue(read.out().contains("read 1048576/1048576 bytes at offset 8388608"), read.out());
            assertTrue(Run.imago("io", "-c", "write 0 512", s.uri).failsWithOneLine().contains("read-only"));
        }
    }

    @Test
    void writesThroughAQemuNbdExportLandAsQemuIoWritesThem() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", "8M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "expected.raw", "8M");
        String[] script = {"-c", "write -P 0x5a 4096 1M", "-c", "write -z 512k 64k", "-c", "write -P 7 7M 12345",
            "-c", "discard 2M 1M", "-c", "flush"};
        List<String> qemuIo = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        qemuIo.addAll(List.of(script));
        qemuIo.add("expected.raw");
        Qemu.ok(dir, qemuIo.toArray());
        try (Server s = new Server("rw", "qemu-nbd", "-t", "-f", "raw", "disk.raw")) {
            List<String> args = new ArrayList<>(List.of("io", "-f", "raw"));
            args.addAll(List.of(script));
            args.add(s.uri);
            Run.imago(args.toArray(String[]::new)).ok();
        }
        Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "raw", "disk.raw", "expected.raw");
    }

    /**
     * {@code convert -n} into an existing export, as qemu-img writes into one: {@code -O raw} into a qemu-nbd export
     * of a raw file full of old data (which the source's holes and zeroes must overwrite), and {@code -O qcow2} into
     * an nbdkit export of a qcow2 file (the export is the qcow2 file, padded since an export does not grow).
     */
    @Test
    void convertWritesIntoAnExistingExportAsQemuImgDoes() throws Exception {
        Path src = source();
        for (String who : List.of("qemu", "imago")) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", who + ".raw", "64M");
            Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0xee 0 64M", who + ".raw");
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", who + ".qcow2", "64M");
            Qemu.ok(dir, "qemu-img", "resize", "-q", "-f", "raw", who + ".qcow2", "80M");
            try (Server raw = new Server(who + "-raw", "qemu-nbd", "-t", "-f", "raw", who + ".raw");
                    Server qcow2 = new Server(who + "-qcow2", "nbdkit", "file", dir.resolve(who + ".qcow2")
                            .toString())) {
                if (who.equals("qemu")) {
                    Qemu.ok(dir, "qemu-img", "convert", "-n", "-O", "raw", src, raw.uri);
                    Qemu.ok(dir, "qemu-img", "convert", "-n", "-O", "qcow2", src, qcow2.uri);
                } else {
                    assertEquals("", Run.imago("convert", "-n", "-O", "raw", src.toString(), raw.uri).ok().out());
                    Run.imago("convert", "-n", "-O", "qcow2", src.toString(), qcow2.uri).ok();
                }
                assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-F", "raw", src,
                        raw.uri));
            }
            assertEquals("", Qemu.ok(dir, "qemu-img", "check", "-q", who + ".qcow2"));
            assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", src, who + ".qcow2"));
        }
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "raw",
                "qemu.raw", "imago.raw"));
        assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", "qemu.qcow2"),
                Qemu.ok(dir, "qemu-img", "map", "--output=json", "imago.qcow2"));
        // a target smaller than the source is refused, as qemu-img refuses it
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "small.raw", "1M");
        try (Server small = new Server("small", "qemu-nbd", "-t", "-f", "raw", "small.raw")) {
            assertEquals("imago: output file is smaller than input file",
                    Run.imago("convert", "-n", "-O", "raw", src.toString(), small.uri).failsWithOneLine());
            assertTrue(Qemu.run(dir, "qemu-img", "convert", "-n", "-O", "raw", src, small.uri).err()
                    .contains("output file is smaller than input file"));
        }
    }

    @Test
    void nbdkitExportsMapAndConvertAsQemuImgSeesThem() throws Exception {
        try (Server s = new Server("random", "nbdkit", "-r", "sparse-random", "64M", "seed=4711", "runlength=65536")) {
            String expected = Qemu.ok(dir, "qemu-img", "map", "--output=json", s.uri);
            assertTrue(QemuMap.parse(expected).size() > 100, expected);
            assertEquals(expected, Run.imago("map", "--output=json", s.uri).ok().out());
            Run.imago("convert", "-O", "raw", s.uri, dir.resolve("copy.raw").toString()).ok();
            Qemu.ok(dir, "qemu-img", "compare", "-F", "raw", "copy.raw", s.uri);
        }
        Files.write(dir.resolve("file.raw"), new byte[] {1, 2, 3});
        Qemu.ok(dir, "qemu-img", "resize", "-q", "-f", "raw", "file.raw", "4M");
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 9 2M 64k", "file.raw");
        try (Server s = new Server("file", "nbdkit", "file", dir.resolve("file.raw").toString())) {
            assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", s.uri),
                    Run.imago("map", "--output=json", s.uri).ok().out());
            Run.imago("io", "-f", "raw", "-c", "write -P 8 1M 4k", s.uri).ok();
            Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "read -P 8 1M 4k", "-c", "read -P 9 2M 64k", "file.raw");
        }
    }

    @Test
    void badLocationsFailWithOneLine() {
        assertTrue(Run.imago("info", "nbd+unix:///?socket=" + dir.resolve("none.sock")).failsWithOneLine()
                .contains("cannot connect"));
        assertTrue(Run.imago("info", "nbd+unix:///").failsWithOneLine().contains("socket=PATH"));
    }
}
