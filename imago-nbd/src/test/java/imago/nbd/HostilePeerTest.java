package imago.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.probe.Imago;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Clients that break the protocol, lie about lengths, ask too much or vanish: each gets the reply the NBD
 * specification asks for (or is disconnected where it allows nothing else), and the server goes on serving the
 * others.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HostilePeerTest {
    static final int SIZE = 1 << 20;
    /** Where "hello" is written: in a hole of the raw file (whose first 4 KiB imago's create writes). */
    static final int AT = 64 << 10;
    static final int ERR_UNSUP = 0x8000_0001;
    static final int ERR_POLICY = 0x8000_0002;
    static final int ERR_INVALID = 0x8000_0003;
    static final int ERR_UNKNOWN = 0x8000_0006;
    static final int ERR_TOO_BIG = 0x8000_0009;
    static final int EPERM = 1;
    static final int EINVAL = 22;
    static final int ENOSPC = 28;

    @TempDir
    Path dir;
    Image image;
    NbdServer server;
    Path socket;

    @BeforeEach
    void serve() throws IOException {
        Path img = dir.resolve("d.raw");
        Imago.create(img, "raw", CreateOptions.ofSize(SIZE));
        image = Imago.opener().path(img).format("raw").writable(true).open();
        image.write(ByteBuffer.wrap("hello".getBytes(StandardCharsets.UTF_8)), AT);
        socket = dir.resolve("s");
        server = NbdServer.builder(image).exportName("x").maxConnections(128)
                .handshakeLimit(Duration.ofMillis(400)).bind(UnixDomainSocketAddress.of(socket));
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
        image.close();
    }

    /** A well-behaved client reads what was written: the server still serves. */
    private void aGoodClientIsServed() throws IOException {
        try (RawClient c = new RawClient(socket).hello(3).go("x", true)) {
            c.request(0, 0, 77, AT, 5, null);
            RawClient.Reply r = c.reply(5);
            assertEquals(77, r.cookie());
            assertEquals(1, r.type(), "an OFFSET_DATA chunk");
            assertEquals(AT, r.payload().getLong());
            byte[] hello = new byte[5];
            r.payload().get(hello);
            assertArrayEquals("hello".getBytes(StandardCharsets.UTF_8), hello);
            c.request(0, 2, 78, 0, 0, null); // NBD_CMD_DISC
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void brokenHandshakesAreDroppedAndOthersServed() throws IOException {
        try (RawClient c = new RawClient(socket).hello(0x40)) { // unknown client flag
            assertTrue(c.closedByServer());
        }
        try (RawClient c = new RawClient(socket).hello(3)) {
            c.write(ByteBuffer.allocate(16).putLong(0x1122334455667788L).putInt(7).putInt(0).flip());
            assertTrue(c.closedByServer(), "a bad option magic ends the connection");
        }
        try (RawClient c = new RawClient(socket).hello(3)) {
            c.write(ByteBuffer.allocate(10).putLong(RawClient.IHAVEOPT).putShort((short) 0).flip());
            // truncated option header, then the client leaves
        }
        try (RawClient c = new RawClient(socket).hello(3)) {
            c.option(1, ByteBuffer.wrap("nope".getBytes(StandardCharsets.UTF_8))); // EXPORT_NAME, unknown
            assertTrue(c.closedByServer());
        }
        try (RawClient c = new RawClient(socket)) {
            c.read(18); // greeting, then nothing: the handshake limit ends it
            assertTrue(c.closedByServer());
        }
        aGoodClientIsServed();
    }

    @Test
    void badOptionsGetTheSpecifiedErrorReplies() throws IOException {
        try (RawClient c = new RawClient(socket).hello(3)) {
            c.option(99, ByteBuffer.allocate(3));
            assertEquals(ERR_UNSUP, c.optionReply().type());
            c.option(5, ByteBuffer.allocate(0)); // STARTTLS without TLS
            assertEquals(ERR_POLICY, c.optionReply().type());
            c.option(6, RawClient.named("nope", ByteBuffer.allocate(2).putShort((short) 0).flip())); // INFO
            assertEquals(ERR_UNKNOWN, c.optionReply().type());
            c.option(6, RawClient.named("x", ByteBuffer.allocate(2).putShort((short) 5).flip())); // 5 requests, 0 sent
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(6, ByteBuffer.allocate(4).putInt(1000).flip()); // a name longer than the option
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(10, RawClient.named("x", ByteBuffer.allocate(4).putInt(0).flip())); // SET before structured
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(8, ByteBuffer.allocate(1)); // STRUCTURED_REPLY with data
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(3, ByteBuffer.allocate(2)); // LIST with data
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(9, ByteBuffer.allocate(100_000)); // longer than any option needs: skipped and refused
            assertEquals(ERR_TOO_BIG, c.optionReply().type());
            c.option(8, ByteBuffer.allocate(0));
            assertEquals(1, c.optionReply().type());
            // a query count the data cannot hold
            c.option(9, RawClient.named("x", ByteBuffer.allocate(4).putInt(Integer.MAX_VALUE).flip()));
            assertEquals(ERR_INVALID, c.optionReply().type());
            c.option(3, ByteBuffer.allocate(0));
            RawClient.OptionReply server = c.optionReply();
            assertEquals(2, server.type());
            assertEquals(1, server.data().getInt());
            assertEquals(1, c.optionReply().type());
            // the same connection still goes into transmission
            c.option(7, RawClient.named("x", ByteBuffer.allocate(2).putShort((short) 0).flip()));
            RawClient.OptionReply r;
            do {
                r = c.optionReply();
            } while (r.type() == 3);
            assertEquals(1, r.type());
            c.request(0, 0, 1, AT, 5, null);
            assertEquals(0, c.reply(5).error());
        }
        aGoodClientIsServed();
    }

    @Test
    void badRequestsGetTheSpecifiedErrors() throws IOException {
        for (boolean structured : new boolean[] {false, true}) {
            try (RawClient c = new RawClient(socket).hello(3).go("x", structured)) {
                c.request(0, 0, 1, SIZE - 10, 11, null); // read past the end
                assertEquals(EINVAL, c.reply(11).error());
                c.request(0, 0, 2, -4096, 1, null); // an offset past any export (2^64 - 4096)
                assertEquals(EINVAL, c.reply(1).error());
                c.request(0, 1, 3, SIZE - 10, 11, ByteBuffer.allocate(11)); // write past the end
                assertEquals(ENOSPC, c.reply(0).error());
                c.request(0, 42, 4, 0, 0, null); // unknown command
                assertEquals(EINVAL, c.reply(0).error());
                c.request(0x8000, 0, 5, 0, 1, null); // unknown flag
                assertEquals(EINVAL, c.reply(1).error());
                c.request(1 << 3, 0, 6, 0, 1, null); // REQ_ONE does not apply to reads
                assertEquals(EINVAL, c.reply(1).error());
                c.request(0, 0, 7, 0, (32 << 20) + 1, null); // larger than the maximum payload
                assertEquals(EINVAL, c.reply(0).error());
                c.request(0, 7, 8, 0, SIZE + 1L, null); // block status past the end (or not negotiated)
                assertEquals(EINVAL, c.reply(0).error());
                c.request(0, 4, 9, SIZE, 1, null); // trim past the end
                assertEquals(EINVAL, c.reply(0).error());
                c.request(0, 0, 10, AT, 5, null);
                RawClient.Reply ok = c.reply(5);
                assertEquals(0, ok.error());
                assertEquals(10, ok.cookie());
                // a write larger than the maximum: refused, and the connection ends (its payload is not read)
                c.request(0, 1, 11, 0, (32 << 20) + 1, null);
                assertEquals(EINVAL, c.reply(0).error());
                assertTrue(c.closedByServer());
            }
        }
        aGoodClientIsServed();
    }

    @Test
    void aReadOnlyExportRefusesChangesWithEperm() throws IOException {
        Path ro = dir.resolve("ro");
        try (NbdServer s = NbdServer.builder(image).readOnly(true).bind(UnixDomainSocketAddress.of(ro));
                RawClient c = new RawClient(ro).hello(3).go("", false)) {
            c.request(0, 1, 1, 0, 4, ByteBuffer.allocate(4));
            assertEquals(EPERM, c.reply(0).error());
            c.request(0, 4, 2, 0, 4096, null);
            assertEquals(EPERM, c.reply(0).error());
            c.request(0, 6, 3, 0, 4096, null);
            assertEquals(EPERM, c.reply(0).error());
            c.request(0, 0, 4, AT, 5, null);
            assertEquals(0, c.reply(5).error());
            assertFalse(s.isClosed());
        }
    }

    @Test
    void sparseReadsAndBlockStatusComeAsStructuredChunks() throws IOException {
        try (RawClient c = new RawClient(socket).hello(3).go("x", true)) {
            c.request(0, 0, 1, AT - 4096, 3 * 4096, null);
            List<RawClient.Reply> chunks = new ArrayList<>();
            RawClient.Reply r;
            do {
                r = c.reply(0);
                chunks.add(r);
            } while ((r.flags() & 1) == 0);
            // a raw file: 4 KiB of hole, the 4 KiB block with "hello", 4 KiB of hole
            assertEquals(List.of(2, 1, 2), chunks.stream().map(RawClient.Reply::type).toList());
            c.request(0, 7, 2, AT - 4096, SIZE - AT + 4096, null);
            RawClient.Reply status = c.reply(0);
            assertEquals(5, status.type());
            ByteBuffer p = status.payload();
            assertEquals(0, p.getInt(), "base:allocation's id");
            assertEquals(List.of(4096, 3, 4096, 0, SIZE - AT - 4096, 3), List.of(p.getInt(), p.getInt(), p.getInt(),
                    p.getInt(), p.getInt(), p.getInt()));
            c.request(1 << 2, 0, 3, AT - 4096, 3 * 4096, null); // DF: one data chunk
            RawClient.Reply one = c.reply(0);
            assertEquals(1, one.type());
            assertEquals(1, one.flags());
            assertEquals(8 + 3 * 4096, one.payload().remaining());
        }
    }

    @Test
    void vanishingAndIdleClientsLeaveTheServerServing() throws Exception {
        try (RawClient c = new RawClient(socket).hello(3).go("x", false)) {
            c.request(0, 1, 1, 0, 1 << 20, null);
            c.write(ByteBuffer.allocate(1000)); // then gone, mid-payload
        }
        try (RawClient c = new RawClient(socket).hello(3).go("x", true)) {
            for (int i = 0; i < 64; i++) {
                c.request(0, 0, i, 0, 1 << 16, null); // replies never read
            }
        }
        List<RawClient> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 100; i++) {
                idle.add(new RawClient(socket));
            }
            aGoodClientIsServed();
            for (RawClient c : idle) {
                c.read(18);
                assertTrue(c.closedByServer(), "an idle client is dropped at the handshake limit");
            }
        } finally {
            for (RawClient c : idle) {
                c.close();
            }
        }
        for (int i = 0; i < 200 && server.activeConnections() > 0; i++) {
            Thread.sleep(10);
        }
        assertEquals(0, server.activeConnections());
        aGoodClientIsServed();
    }
}
