package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.StorageLocation;
import imago.nbd.NbdLocation;
import imago.nbd.NbdServer;
import imago.nbd.TlsCredentials;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.TlsFiles;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD over TLS both ways, with certificates made by openssl (a PKCS#1 server key, a PKCS#8 client key): imago's
 * server to GnuTLS clients (nbdinfo, nbdcopy, qemu-img with {@code tls-creds-x509}), refusing plain clients with
 * qemu-nbd's very reply and clients without a certificate; imago's client ({@code nbds://}, {@code nbds+unix://})
 * to imago's server and to qemu-nbd's.
 */
class NbdTlsTest {
    private static final int SIZE = 4 << 20;

    @TempDir
    static Path certs;
    static TlsFiles tls;

    @TempDir
    Path dir;

    @BeforeAll
    static void certificates() throws IOException {
        for (String t : new String[] {"qemu-img", "qemu-nbd", "nbdinfo", "nbdcopy", "openssl"}) {
            Qemu.tool(t);
        }
        tls = TlsFiles.create(certs);
    }

    /** A memory image of SIZE random bytes, served with TLS (clients must show a certificate) until closed. */
    private record Served(Image image, NbdServer server, byte[] content) implements AutoCloseable {
        static Served start(java.net.SocketAddress address) throws IOException {
            StorageLocation where = StorageLocation.memory("tls-" + UUID.randomUUID());
            Imago.create(where, "raw", CreateOptions.ofSize(SIZE));
            Image image = Imago.opener().location(where).format("raw").writable(true).open();
            byte[] content = new byte[SIZE];
            new Random(3).nextBytes(content);
            image.write(ByteBuffer.wrap(content), 0);
            NbdServer server = NbdServer.builder(image).maxConnections(4)
                    .tls(TlsCredentials.load(tls.server(), TlsCredentials.Endpoint.SERVER, true)).bind(address);
            return new Served(image, server, content);
        }

        @Override
        public void close() throws IOException {
            server.close();
            image.close();
        }
    }

    private String uri(Path socket, Path credentials) {
        return "nbds+unix:///?socket=" + socket + (credentials == null ? "" : "&tls-certificates=" + credentials);
    }

    @Test
    void gnuTlsClientsReadImagosTlsExport() throws IOException {
        Path socket = dir.resolve("imago.sock");
        try (Served s = Served.start(UnixDomainSocketAddress.of(socket))) {
            String info = Qemu.ok(dir, "nbdinfo", uri(socket, tls.client()));
            assertTrue(info.contains("with TLS") && info.contains("export-size: " + SIZE), info);
            Qemu.ok(dir, "nbdcopy", "--connections=2", uri(socket, tls.client()), "copy.raw");
            assertArrayEquals(s.content(), Files.readAllBytes(dir.resolve("copy.raw")));
            String qemu = Qemu.ok(dir, "qemu-img", "info", "--object", "tls-creds-x509,id=t0,dir=" + tls.client()
                    + ",endpoint=client", "--image-opts", "driver=nbd,path=" + socket + ",tls-creds=t0,tls-hostname=localhost");
            assertTrue(qemu.contains("virtual size: 4 MiB"), qemu);
            // a client without a certificate is refused: the server verifies its peers, as qemu-nbd does by default
            Path noCert = Files.createDirectories(dir.resolve("nocert"));
            Files.copy(tls.client().resolve("ca-cert.pem"), noCert.resolve("ca-cert.pem"));
            assertNotEquals(0, Qemu.run(dir, "nbdinfo", uri(socket, noCert)).status());
        }
    }

    @Test
    @SuppressWarnings("try") // the servers only need to run while the clients try
    void plainClientsAreRefusedAsQemuNbdRefusesThem() throws Exception {
        Path ours = dir.resolve("imago.sock");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", "4M");
        try (Served s = Served.start(UnixDomainSocketAddress.of(ours));
                ServerProcess qemu = ServerProcess.qemuNbd(dir, "qemu", "--object", "tls-creds-x509,id=t0,dir="
                        + tls.server() + ",endpoint=server", "--tls-creds=t0", "-f", "raw", "disk.raw")) {
            Qemu.Output theirs = Qemu.run(dir, "qemu-img", "info", "nbd+unix:///?socket=" + qemu.socket);
            Qemu.Output mine = Qemu.run(dir, "qemu-img", "info", "nbd+unix:///?socket=" + ours);
            assertEquals(1, theirs.status());
            assertTrue(theirs.err().contains("Option 0x7 not permitted before TLS"), theirs.err());
            assertEquals(theirs.err().replace(qemu.socket.toString(), "S"), mine.err().replace(ours.toString(), "S"));
            // and imago's own client, asked for no TLS, says what to do
            for (Path socket : new Path[] {ours, qemu.socket}) {
                ImageException e = assertThrows(ImageException.class, () -> Imago.opener().location(
                        NbdLocation.of("nbd+unix:///?socket=" + socket)).open());
                assertTrue(e.getMessage().contains("the server requires TLS (use nbds://)"), e.getMessage());
            }
        }
    }

    @Test
    void imagosClientSpeaksTlsToImagosServer() throws Exception {
        Path socket = dir.resolve("imago.sock");
        byte[] data = new byte[3 << 20];
        new Random(9).nextBytes(data);
        try (Served s = Served.start(UnixDomainSocketAddress.of(socket))) {
            try (Image image = Imago.opener().location(NbdLocation.of(uri(socket, tls.client()))).writable(true)
                    .open()) {
                ByteBuffer all = ByteBuffer.allocate(SIZE);
                image.read(all, 0);
                assertArrayEquals(s.content(), all.array());
                image.write(ByteBuffer.wrap(data), 12345);
                image.flush();
            }
            ByteBuffer back = ByteBuffer.allocate(data.length);
            s.image().read(back, 12345);
            assertArrayEquals(data, back.array());
            ImageException refused = assertThrows(ImageException.class, () -> Imago.opener()
                    .location(NbdLocation.of(uri(socket, null))).open());
            assertTrue(refused.getMessage().contains("TLS handshake failed"), refused.getMessage());
        }
    }

    @Test
    void overTcpTheServersNameIsChecked() throws Exception {
        try (Served s = Served.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            int port = ((InetSocketAddress) s.server().localAddress()).getPort();
            try (Image image = Imago.opener().location(NbdLocation.of("nbds://localhost:" + port
                    + "/?tls-certificates=" + tls.client())).open()) {
                assertEquals(SIZE, image.size());
            }
        }
    }

    @Test
    void imagosClientSpeaksTlsToQemuNbd() throws Exception {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", "4M");
        Qemu.ok(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x42 1M 64k", "disk.raw");
        try (ServerProcess qemu = ServerProcess.qemuNbd(dir, "qemu", "--object", "tls-creds-x509,id=t0,dir="
                + tls.server() + ",endpoint=server", "--tls-creds=t0", "-f", "raw", "disk.raw");
                Image image = Imago.opener().location(NbdLocation.of(uri(qemu.socket, tls.client()))).open()) {
            ByteBuffer b = ByteBuffer.allocate(64 << 10);
            image.read(b, 1 << 20);
            byte[] expected = new byte[64 << 10];
            java.util.Arrays.fill(expected, (byte) 0x42);
            assertArrayEquals(expected, b.array());
        }
    }

    @Test
    void missingCredentialsAreNamed() {
        IOException e = assertThrows(IOException.class,
                () -> TlsCredentials.load(dir, TlsCredentials.Endpoint.SERVER, true));
        assertEquals("Unable to access credentials " + dir.resolve("ca-cert.pem") + ": No such file or directory",
                e.getMessage());
    }
}
