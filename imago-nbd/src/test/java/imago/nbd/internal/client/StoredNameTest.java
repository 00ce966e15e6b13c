package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.OpenGate;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenGate rule for NBD: a backing file name stored in an image is never parsed as a URI, even with the NBD
 * storage installed and a permissive gate. The image names live NBD servers, which must see no connection.
 */
class StoredNameTest {
    @TempDir
    Path dir;

    @Test
    void aBackingNameThatIsAnNbdUriConnectsNowhere() throws IOException {
        try (ServerSocketChannel tcp = ServerSocketChannel.open()
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                ServerSocketChannel unix = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
                        .bind(UnixDomainSocketAddress.of(dir.resolve("s.sock")))) {
            tcp.configureBlocking(false);
            unix.configureBlocking(false);
            int port = ((InetSocketAddress) tcp.getLocalAddress()).getPort();
            String[] names = {"nbd://127.0.0.1:" + port + "/", "nbd+unix:///?socket=" + dir.resolve("s.sock")};
            for (int i = 0; i < names.length; i++) {
                String top = "top" + i + ".qcow2";
                // -u: qemu-img itself would connect to check the backing file
                Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", names[i], "-F", "raw", top, "1M");
                IOException e = assertThrows(IOException.class, () -> {
                    try (var image = Imago.opener().path(dir.resolve(top)).gate(OpenGate.permissive()).open()) {
                        image.read(java.nio.ByteBuffer.allocate(512), 0);
                    }
                }, names[i]);
                // a file name relative to the image's directory, as any other stored name
                assertTrue(e instanceof java.nio.file.NoSuchFileException && e.getMessage().equals(
                        dir.resolve(names[i]).normalize().toString()), e.toString());
                try (var image = Imago.opener().path(dir.resolve(top)).noBacking().open()) {
                    assertEquals(names[i], image.info().backingFilename().orElseThrow());
                }
            }
            assertNull(tcp.accept(), "a connection to the TCP server");
            assertNull(unix.accept(), "a connection to the Unix socket server");
        }
    }
}
