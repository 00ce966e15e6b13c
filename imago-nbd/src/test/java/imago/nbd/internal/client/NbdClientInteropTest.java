package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.api.ImageException;
import imago.nbd.NbdLocation;
import imago.nbd.NbdServer;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuMap;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client through the user API ({@code Imago.opener().location(NbdLocation.of(uri))}) against real servers:
 * a qcow2 chain served by imago's own server reads and maps as the file does; the block size limits of nbdkit's
 * blocksize-policy filter (which refuses what breaks them) are kept; eight threads writing through one connection
 * to qemu-nbd leave what they wrote.
 */
class NbdClientInteropTest {
    @TempDir
    Path dir;

    private static Image open(String uri, boolean writable) throws java.io.IOException {
        return Imago.opener().location(NbdLocation.of(uri)).writable(writable).open();
    }

    @Test
    @SuppressWarnings("try") // the server only needs to run while the client reads
    void anImageServedByImagoReadsAndMapsAsTheFile() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "8M");
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 3M", "base.raw");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        Qemu.ok(dir, "qemu-io", "-c", "write -P 0x21 1M 64k", "-c", "write -z 2M 128k", "-c", "write -P 3 6M 64k",
                "top.qcow2");
        Path socket = dir.resolve("imago.sock");
        try (Image file = Imago.opener().path(dir.resolve("top.qcow2")).open();
                NbdServer server = NbdServer.builder(file).exportName("disk").maxConnections(2)
                        .bind(UnixDomainSocketAddress.of(socket));
                Image remote = open("nbd+unix:///disk?socket=" + socket, false)) {
            assertEquals("raw", remote.format());
            assertEquals(file.size(), remote.size());
            ByteBuffer a = ByteBuffer.allocate((int) file.size());
            ByteBuffer b = ByteBuffer.allocate((int) file.size());
            file.read(a, 0);
            remote.read(b, 0);
            assertArrayEquals(a.array(), b.array());
            // what reads as zero in the chain is a hole of the export, the rest data
            String expected = Qemu.ok(dir, "qemu-img", "map", "--output=json", "nbd+unix:///disk?socket=" + socket);
            List<String> theirs = new ArrayList<>();
            for (QemuMap.Entry e : QemuMap.parse(expected)) {
                theirs.add(e.start() + "+" + e.length() + (e.zero() ? " zero" : "") + (e.data() ? " data" : ""));
            }
            List<String> ours = new ArrayList<>();
            for (Extent e : remote.extents(0, remote.size())) {
                ours.add(e.offset() + "+" + e.length() + (e.zero() ? " zero" : "") + (e.data() ? " data" : ""));
            }
            assertEquals(theirs, ours);
            assertTrue(ours.size() >= 4, ours.toString());
        }
    }

    @Test
    void theServersBlockSizesAreKept() throws Exception {
        // the filter refuses (EINVAL) any request that is unaligned to 512 bytes or carries more than 64 KiB
        try (ServerProcess kit = ServerProcess.nbdkit(dir, "policy", "--filter=blocksize-policy", "memory", "4M",
                "blocksize-minimum=512", "blocksize-preferred=4096", "blocksize-maximum=65536",
                "blocksize-error-policy=error"); Image image = open(kit.uri(), true)) {
            byte[] data = new byte[1 << 20];
            new Random(7).nextBytes(data);
            image.write(ByteBuffer.wrap(data), 1000);
            image.flush();
            ByteBuffer back = ByteBuffer.allocate(data.length);
            image.read(back, 1000);
            assertArrayEquals(data, back.array());
            ByteBuffer odd = ByteBuffer.allocate(3);
            image.read(odd, 1001);
            assertArrayEquals(new byte[] {data[1], data[2], data[3]}, odd.array());
        }
    }

    @Test
    void concurrentWritersShareOneConnection() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", "16M");
        byte[] expected = new byte[16 << 20];
        try (ServerProcess qemu = ServerProcess.qemuNbd(dir, "rw", "-f", "raw", "disk.raw");
                Image image = open(qemu.uri(), true); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int id = t;
                byte[] chunk = new byte[(2 << 20) / 8];
                new Random(id).nextBytes(chunk);
                for (int i = 0; i < 8; i++) {
                    System.arraycopy(chunk, 0, expected, id * (2 << 20) + i * chunk.length, chunk.length);
                }
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 8; i++) {
                        image.write(ByteBuffer.wrap(chunk), (long) id * (2 << 20) + (long) i * chunk.length);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            image.flush();
        }
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("disk.raw")));
    }

    @Test
    void anExportThatIsNotThereIsNamed() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", "1M");
        try (ServerProcess qemu = ServerProcess.qemuNbd(dir, "named", "-x", "disk", "-f", "raw", "disk.raw")) {
            ImageException e = assertThrows(ImageException.class, () -> open(qemu.uri("other"), false));
            assertTrue(e.getMessage().contains("the server has no export 'other'"), e.getMessage());
        }
    }
}
