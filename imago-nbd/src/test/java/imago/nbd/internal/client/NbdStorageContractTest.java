package imago.nbd.internal.client;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.nbd.NbdServer;
import imago.probe.Imago;
import imago.testkit.StorageContractTest;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/** The storage contract on NBD exports, served by imago's own server, by nbdkit and by qemu-nbd. */
class NbdStorageContractTest {
    static final Duration TIMEOUT = Duration.ofSeconds(20);

    static Storage open(String uri, boolean writable) throws IOException {
        return NbdStorageProvider.open(NbdUri.parse(uri), writable, TIMEOUT);
    }

    /** A fixed-size export: writes past its end fail. */
    abstract static class ExportContract extends StorageContractTest {
        @TempDir
        Path dir;
        AutoCloseable server;
        String uri;

        abstract String serve(long size) throws Exception;

        @Override
        protected Storage openNew(long size) throws IOException {
            try {
                uri = serve(size);
            } catch (IOException e) {
                throw e;
            } catch (Exception e) {
                throw new IOException(e);
            }
            return open(uri, true);
        }

        @Override
        protected Storage openReadOnly(Storage written) throws IOException {
            return open(uri, false);
        }

        @Override
        protected boolean grows() {
            return false;
        }

        @AfterEach
        void stop() throws Exception {
            if (server != null) {
                server.close();
            }
        }
    }

    @Nested
    class ImagoServer extends ExportContract {
        private Image image;
        private final String name = "nbd-contract-" + UUID.randomUUID();

        @Override
        String serve(long size) throws IOException {
            StorageLocation where = StorageLocation.memory(name);
            Imago.create(where, "raw", CreateOptions.ofSize(size));
            image = Imago.opener().location(where).format("raw").writable(true).open();
            Path socket = dir.resolve("imago.sock");
            NbdServer s = NbdServer.builder(image).maxConnections(4).persistent(true)
                    .bind(UnixDomainSocketAddress.of(socket));
            server = () -> {
                s.close();
                image.close();
            };
            return "nbd+unix:///?socket=" + socket;
        }
    }

    @Nested
    class Nbdkit extends ExportContract {
        @Override
        String serve(long size) throws Exception {
            ServerProcess p = ServerProcess.nbdkit(dir, "kit", "memory", size);
            server = p;
            return p.uri();
        }
    }

    @Nested
    class QemuNbd extends ExportContract {
        @Override
        String serve(long size) throws Exception {
            imago.testkit.Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "disk.raw", size);
            ServerProcess p = ServerProcess.qemuNbd(dir, "qemu", "-e", "4", "-f", "raw", "disk.raw");
            server = p;
            return p.uri();
        }
    }
}
