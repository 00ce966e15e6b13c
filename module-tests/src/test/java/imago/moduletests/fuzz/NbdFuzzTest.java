package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.nbd.NbdServer;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz target for the NBD server's parsers (client flags, options and their data, request headers and payloads):
 * any bytes a client sends after the greeting are answered or hung up on within a bound, and the server keeps
 * serving. The committed corpus ({@code NbdFuzzTestInputs/serveAnyClient/}) holds whole valid sessions (structured
 * replies, meta contexts, GO, reads, writes, block status, disconnect) and broken ones. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=NbdFuzzTest#serveAnyClient -Djazzer.max_duration=10m
 * </pre>
 */
class NbdFuzzTest {
    private static final String NAME = "fuzz-nbd";
    private static Path dir;
    private static Path socket;
    private static Image image;
    private static NbdServer server;

    @BeforeAll
    static void serve() throws IOException {
        MemoryStorage.of(NAME, new byte[64 * 1024]).close();
        image = Imago.opener().location(StorageLocation.memory(NAME)).format("raw").writable(true).open();
        dir = Files.createTempDirectory("nbd-fuzz");
        socket = dir.resolve("s");
        server = NbdServer.builder(image).exportName("x").maxConnections(4).allocationDepth(true)
                .handshakeLimit(Duration.ofSeconds(2)).bind(UnixDomainSocketAddress.of(socket));
    }

    @AfterAll
    static void stop() throws IOException {
        server.close();
        image.close();
        MemoryStorage.delete(NAME);
        Files.deleteIfExists(socket);
        Files.deleteIfExists(dir);
    }

    /** Sends the bytes as a client would after the greeting, then reads whatever comes until the server hangs up. */
    @FuzzTest(maxDuration = "2m")
    void serveAnyClient(byte[] data) throws Exception {
        try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            c.connect(UnixDomainSocketAddress.of(socket));
            CompletableFuture<Long> replies = CompletableFuture.supplyAsync(() -> drain(c));
            try {
                c.write(ByteBuffer.wrap(data));
                c.shutdownOutput();
            } catch (IOException e) {
                // the server hung up first: it may
            }
            try {
                replies.get(10, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("the server neither answered nor hung up within 10 s", e);
            }
        }
        if (server.isClosed()) {
            throw new AssertionError("the server stopped");
        }
    }

    private static long drain(SocketChannel c) {
        long total = 0;
        ByteBuffer b = ByteBuffer.allocate(1 << 16);
        try {
            int n;
            while ((n = c.read(b.clear())) >= 0) {
                total += n;
            }
        } catch (IOException e) {
            // a reset is a hang-up too
        }
        return total;
    }
}
