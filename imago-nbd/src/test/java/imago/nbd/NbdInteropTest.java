package imago.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real NBD clients against {@link NbdServer}: nbdinfo (its JSON, listing, maps of every meta context, which
 * must equal what it prints for qemu-nbd serving the same image), nbdcopy with four connections both ways,
 * and qemu-img and qemu-io through {@code nbd://} and {@code nbd+unix://}.
 */
class NbdInteropTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Tools.require();
    }

    /** A qcow2 image over a raw backing file, with data, zeroes, a compressed cluster and two bitmaps. */
    private Path chain() {
        Tools.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "16M");
        Tools.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x12 12M 1M", "base.raw");
        Tools.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        Tools.ok(dir, "qemu-io", "-c", "write -P 0x21 1M 64k", "-c", "write -z 2M 128k", "-c", "write -c -P 3 8M 64k",
                "top.qcow2");
        Tools.ok(dir, "qemu-img", "bitmap", "--add", "top.qcow2", "live");
        Tools.ok(dir, "qemu-io", "-c", "write -P 0x31 4M 4k", "-c", "write -z 5M 1M", "top.qcow2");
        // a disabled bitmap with the bits of the live one so far, which later writes do not reach
        Tools.ok(dir, "qemu-img", "bitmap", "--add", "-g", "4096", "--disable", "top.qcow2", "frozen");
        Tools.ok(dir, "qemu-img", "bitmap", "--merge", "live", "top.qcow2", "frozen");
        Tools.ok(dir, "qemu-io", "-c", "write -P 0x32 10M 5000", "-c", "discard 12M 64k", "top.qcow2");
        return dir.resolve("top.qcow2");
    }

    @Test
    @SuppressWarnings("try") // the servers only need to run while the clients do
    void nbdinfoSeesWhatItSeesOfQemuNbd() throws Exception {
        Path img = chain();
        Path ours = dir.resolve("imago.sock");
        Path theirs = dir.resolve("qemu.sock");
        try (Image image = Imago.opener().path(img).open();
                NbdServer server = NbdServer.builder(image).exportName("disk").description("a test disk")
                        .maxConnections(2).allocationDepth(true).bitmap("frozen").bitmap("live")
                        .bind(UnixDomainSocketAddress.of(ours));
                var qemu = new Tools.QemuNbd(dir, theirs, "-r", "-e", "2", "-x", "disk", "-D", "a test disk", "-A",
                        "-B", "live", "-B", "frozen", "-f", "qcow2", img)) {
            for (String map : List.of("--map", "--map=qemu:allocation-depth", "--map=qemu:dirty-bitmap:live",
                    "--map=qemu:dirty-bitmap:frozen")) {
                String expected = Tools.ok(dir, "nbdinfo", map, Tools.unixUri(theirs, "disk"));
                assertEquals(expected, Tools.ok(dir, "nbdinfo", map, Tools.unixUri(ours, "disk")), map);
                assertTrue(expected.lines().count() > 2, expected);
            }
            // (qemu-nbd lists its -B bitmaps last first)
            for (String info : List.of("--json", "--list")) {
                String expected = Tools.ok(dir, "nbdinfo", info, Tools.unixUri(theirs, "disk"));
                String actual = Tools.ok(dir, "nbdinfo", info, Tools.unixUri(ours, "disk"));
                assertEquals(expected.replace(theirs.toString(), "SOCKET"), actual.replace(ours.toString(), "SOCKET"),
                        info);
            }
            assertTrue(Tools.ok(dir, "nbdinfo", "--json", Tools.unixUri(ours, "disk"))
                    .contains("\"qemu:dirty-bitmap:frozen\""));
        }
    }

    @Test
    @SuppressWarnings("try") // the servers only need to run while the clients do
    void multiConnIsAdvertisedWhenSeveralClientsMayConnect() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "d.raw", "1M");
        try (Image image = Imago.opener().path(dir.resolve("d.raw")).format("raw").writable(true).open()) {
            for (int clients : new int[] {1, 4}) {
                Path sock = dir.resolve("mc" + clients + ".sock");
                try (NbdServer server = NbdServer.builder(image).maxConnections(clients)
                        .bind(UnixDomainSocketAddress.of(sock))) {
                    Qemu.Output o = Qemu.run(dir, "nbdinfo", "--can", "multi-conn", Tools.unixUri(sock, ""));
                    assertEquals(clients > 1 ? 0 : 2, o.status(), o.err());
                }
            }
        }
    }

    @Test
    @SuppressWarnings("try") // the servers only need to run while the clients do
    void nbdcopyWritesAndReadsWithFourConnections() throws Exception {
        Path src = dir.resolve("src.raw");
        byte[] data = new byte[24 << 20];
        Random r = new Random(18);
        for (int off = 0; off < data.length; off += 1 << 20) {
            if (r.nextInt(3) != 0) { // a third of the MiBs stay holes
                byte[] chunk = new byte[1 << 20];
                r.nextBytes(chunk);
                System.arraycopy(chunk, 0, data, off, chunk.length);
            }
        }
        Files.write(src, data);
        Path img = dir.resolve("copy.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", img, Integer.toString(data.length));
        Path sock = dir.resolve("copy.sock");
        try (Image image = Imago.opener().path(img).writable(true).open();
                NbdServer server = NbdServer.builder(image).maxConnections(4).bind(UnixDomainSocketAddress.of(sock))) {
            Tools.ok(dir, "nbdcopy", "--connections=4", "--flush", src, Tools.unixUri(sock, ""));
            Tools.ok(dir, "nbdcopy", "--connections=4", Tools.unixUri(sock, ""), dir.resolve("back.raw"));
        }
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src,
                img));
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "raw", src,
                dir.resolve("back.raw")));
        Qemu.ok(dir, "qemu-img", "check", img);
    }

    @Test
    @SuppressWarnings("try") // the servers only need to run while the clients do
    void qemuImgAndQemuIoWorkOverTcpAndUnixSockets() throws Exception {
        Path img = dir.resolve("io.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", img, "8M");
        Path sock = dir.resolve("io.sock");
        try (Image image = Imago.opener().path(img).writable(true).open();
                NbdServer tcp = NbdServer.builder(image).exportName("e").maxConnections(2)
                        .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                NbdServer unix = NbdServer.builder(image).exportName("e").maxConnections(2)
                        .bind(UnixDomainSocketAddress.of(sock))) {
            int port = ((InetSocketAddress) tcp.localAddress()).getPort();
            String tcpUri = "nbd://127.0.0.1:" + port + "/e";
            String unixUri = Tools.unixUri(sock, "e");
            Tools.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 64k", "-c", "write -z 3M 1M",
                    "-c", "write -P 0x6b 7M 4097", tcpUri);
            String read = Tools.ok(dir, "qemu-io", "-f", "raw", "-c", "read -P 0x5a 1M 64k", "-c", "read -P 0 3M 1M",
                    "-c", "read -P 0x6b 7M 4097", "-c", "read -P 0 0 1M", unixUri);
            assertTrue(read.contains("read 4097/4097 bytes at offset 7340032"), read);
            Tools.ok(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", unixUri, dir.resolve("conv.qcow2"));
            assertEquals("Images are identical.\n", Tools.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2",
                    tcpUri, dir.resolve("conv.qcow2")));
            // a write qemu-io does not flush reaches the image all the same once the server's client is gone
            Qemu.Output past = Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write 8M 512", tcpUri);
            assertTrue(past.out().contains("Input/output error") || past.err().contains("Input/output error")
                    || past.out().contains("out of bounds") || past.err().contains("out of bounds")
                    || past.out().contains("Invalid argument") || past.err().contains("Invalid argument")
                    || past.status() != 0, past.out() + past.err());
        }
        assertEquals("", Qemu.ok(dir, "qemu-img", "check", "-q", img));
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", img, dir.resolve("conv.qcow2")));
    }
}
