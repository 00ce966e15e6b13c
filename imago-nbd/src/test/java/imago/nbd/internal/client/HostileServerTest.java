package imago.nbd.internal.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.ImageException;
import imago.api.spi.Storage;
import imago.nbd.internal.Nbd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

/**
 * Servers that break the protocol: the client fails with an {@link ImageException} saying what the server did,
 * within its timeout, having allocated nothing the server asked for beyond what its request bounds; a request that
 * fails with the server's error leaves the connection usable, a broken protocol fails every later request.
 */
class HostileServerTest {
    private static final Duration TIMEOUT = Duration.ofMillis(800);
    private static final int SIZE = 1 << 20;

    @TempDir
    Path dir;

    private static Storage open(FakeServer server) throws IOException {
        return NbdStorageProvider.open(NbdUri.parse(server.uri()), true, TIMEOUT);
    }

    /** Runs {@code body}, which must fail with an ImageException whose message contains {@code expected}. */
    private static ImageException fails(String expected, Executable body) {
        ImageException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(ImageException.class, body));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        return e;
    }

    /** Opens a connection to a server that plays the handshake and then {@code script}, and reads 4 KiB at 0. */
    private ImageException readFails(String expected, FakeServer.Script script) throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> {
            s.handshake(SIZE, 0, 1 << 16);
            script.run(s);
        }); Storage storage = open(server)) {
            ImageException e = fails(expected, () -> storage.read(ByteBuffer.allocate(4096), 0));
            // a broken connection stays broken: the next request fails at once, with the same cause
            ImageException again = fails(expected, () -> storage.read(ByteBuffer.allocate(512), 0));
            assertEquals(e.getMessage(), again.getMessage());
            return e;
        }
    }

    @Test
    void aSilentServerTimesOutInTheHandshake() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> Thread.sleep(60_000))) {
            fails("did not finish the handshake within 800 ms", () -> open(server));
        }
    }

    @Test
    void aGreetingOfAnotherProtocolIsRefused() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> s.wire.write(ByteBuffer.wrap(
                "SSH-2.0-OpenSSH_9.2p1 Debian\r\n".getBytes(StandardCharsets.US_ASCII))))) {
            fails("not an NBD server", () -> open(server));
        }
    }

    @Test
    void anOversizedOptionReplyIsRefusedBeforeItIsRead() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> {
            s.greet();
            s.wire.read(16);
            s.wire.write(ByteBuffer.allocate(20).putLong(Nbd.OPTION_REPLY_MAGIC).putInt(Nbd.OPT_STRUCTURED_REPLY)
                    .putInt(Nbd.REP_ACK).putInt(0x7fff_ffff).flip());
        })) {
            fails("an option reply of 2147483647 bytes", () -> open(server));
        }
    }

    @Test
    void anUnknownExportIsRefusedWithTheServersMessage() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> {
            s.greet();
            for (int i = 0; i < 3; i++) {
                ByteBuffer head = s.wire.read(16);
                head.getLong();
                int option = head.getInt();
                s.wire.skip(head.getInt());
                if (option == Nbd.OPT_GO) {
                    s.reply(option, Nbd.REP_ERR_UNKNOWN, ByteBuffer.wrap("no such disk".getBytes()));
                } else {
                    s.reply(option, Nbd.REP_ERR_UNSUP, ByteBuffer.allocate(0));
                }
            }
        })) {
            fails("the server has no export '': no such disk", () -> open(server));
        }
    }

    @Test
    void aServerWithoutGoIsAskedWithExportName() throws Exception {
        byte[] content = new byte[4096];
        Arrays.fill(content, (byte) 0x3c);
        try (FakeServer server = new FakeServer(dir, s -> {
            s.greet();
            while (true) {
                ByteBuffer head = s.wire.read(16);
                head.getLong();
                int option = head.getInt();
                s.wire.skip(head.getInt());
                if (option == Nbd.OPT_EXPORT_NAME) {
                    break;
                }
                s.reply(option, Nbd.REP_ERR_UNSUP, ByteBuffer.allocate(0));
            }
            s.wire.write(ByteBuffer.allocate(10).putLong(SIZE).putShort((short) Nbd.FLAG_HAS_FLAGS).flip());
            long[] r = s.request();
            s.wire.write(ByteBuffer.allocate(16).putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(0).putLong(r[1]).flip(),
                    ByteBuffer.wrap(content));
        }); Storage storage = NbdStorageProvider.open(NbdUri.parse(server.uri()), false, TIMEOUT)) {
            assertEquals(SIZE, storage.size());
            ByteBuffer dst = ByteBuffer.allocate(4096);
            storage.read(dst, 8192);
            assertArrayEquals(content, dst.array());
        }
    }

    @Test
    void aBadReplyMagicEndsTheConnection() throws IOException {
        readFails("bad reply magic 0xdeadbeef", s -> {
            s.request();
            s.wire.write(ByteBuffer.allocate(16).putInt(0xdeadbeef).putInt(0).putLong(0).flip());
        });
    }

    @Test
    void aReplyToARequestNeverSentEndsTheConnection() throws IOException {
        readFails("which no request in flight has", s -> {
            long[] r = s.request();
            s.chunk(r[1] + 1000, true, Nbd.REPLY_TYPE_NONE, 0, ByteBuffer.allocate(0));
        });
    }

    @Test
    void aDataChunkLongerThanTheRequestIsRefusedBeforeItIsRead() throws IOException {
        readFails("a data chunk of 2147483647 bytes", s -> {
            long[] r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_OFFSET_DATA, 0x7fff_ffffL, ByteBuffer.allocate(8).putLong(0).flip());
        });
    }

    @Test
    void aChunkOutsideTheRequestIsRefused() throws IOException {
        readFails("in the reply to NBD_CMD_READ", s -> {
            long[] r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_OFFSET_HOLE, 12, ByteBuffer.allocate(12).putLong(r[2] + 4000)
                    .putInt(4096).flip());
        });
    }

    @Test
    void aReadReplyThatLeavesBytesOutIsRefused() throws IOException {
        readFails("covered 512 of them", s -> {
            long[] r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_OFFSET_HOLE, 12, ByteBuffer.allocate(12).putLong(r[2]).putInt(512)
                    .flip());
        });
    }

    @Test
    void overlappingChunksAreRefused() throws IOException {
        readFails("overlap", s -> {
            long[] r = s.request();
            for (int i = 0; i < 2; i++) {
                s.chunk(r[1], false, Nbd.REPLY_TYPE_OFFSET_HOLE, 12, ByteBuffer.allocate(12).putLong(r[2])
                        .putInt(4096).flip());
            }
        });
    }

    @Test
    void endlessBlockStatusChunksAreRefused() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> {
            s.handshake(SIZE, 0, 1 << 16);
            long[] r = s.request();
            ByteBuffer chunk = ByteBuffer.allocate(4 + 8 * 4096).putInt(1);
            while (chunk.hasRemaining()) {
                chunk.putInt(512).putInt(0);
            }
            for (int i = 0; i < 100; i++) {
                s.chunk(r[1], false, Nbd.REPLY_TYPE_BLOCK_STATUS, chunk.capacity(), chunk.flip());
            }
        }); Storage storage = open(server)) {
            fails("more than 131072 block status descriptors", () -> storage.dataExtent(0, SIZE));
        }
    }

    @Test
    void aHugeBlockStatusChunkIsRefusedBeforeItIsRead() throws IOException {
        try (FakeServer server = new FakeServer(dir, s -> {
            s.handshake(SIZE, 0, 1 << 16);
            long[] r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_BLOCK_STATUS, 0xffff_fff4L, ByteBuffer.allocate(4).putInt(1).flip());
        }); Storage storage = open(server)) {
            fails("a block status chunk of 4294967284 bytes", () -> storage.dataExtent(0, SIZE));
        }
    }

    @Test
    void aTruncatedReplyFailsTheRequest() throws IOException {
        readFails("the connection to the NBD server failed", s -> {
            long[] r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_OFFSET_DATA, 8 + 4096, ByteBuffer.allocate(8 + 100).putLong(r[2])
                    .flip());
            s.wire.close();
        });
    }

    @Test
    void aServerThatNeverRepliesTimesOut() throws IOException {
        readFails("no reply from the NBD server within 800 ms", s -> s.request());
    }

    @Test
    void theServersErrorFailsOnlyItsRequest() throws Exception {
        byte[] content = new byte[512];
        Arrays.fill(content, (byte) 0x77);
        try (FakeServer server = new FakeServer(dir, s -> {
            s.handshake(SIZE, 0, 1 << 16);
            long[] r = s.request();
            byte[] text = "disk on fire".getBytes(StandardCharsets.UTF_8);
            s.chunk(r[1], true, Nbd.REPLY_TYPE_ERROR, 6 + text.length, ByteBuffer.allocate(6 + text.length)
                    .putInt(Nbd.EIO).putShort((short) text.length).put(text).flip());
            r = s.request();
            s.chunk(r[1], true, Nbd.REPLY_TYPE_OFFSET_DATA, 8 + 512, ByteBuffer.allocate(8 + 512).putLong(r[2])
                    .put(content).flip());
        }); Storage storage = open(server)) {
            ImageException e = fails("NBD_CMD_READ failed: Input/output error (disk on fire)",
                    () -> storage.read(ByteBuffer.allocate(4096), 4096));
            assertEquals(java.util.OptionalLong.of(4096), e.offset());
            ByteBuffer dst = ByteBuffer.allocate(512);
            storage.read(dst, 0);
            assertArrayEquals(content, dst.array());
        }
    }
}
