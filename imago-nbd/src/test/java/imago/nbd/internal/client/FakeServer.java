package imago.nbd.internal.client;

import imago.nbd.internal.Nbd;
import imago.nbd.internal.Wire;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A scripted NBD server for one client, on a Unix socket: a test says what it sends, byte for byte, so that it
 * can break the protocol anywhere. {@link #handshake} plays a well-behaved handshake that tests follow with
 * misbehaving replies.
 */
final class FakeServer implements AutoCloseable {
    /** What the server does with its one client. */
    interface Script {
        void run(FakeServer server) throws Exception;
    }

    private final ServerSocketChannel listener;
    private final Thread thread;
    final Path socket;
    Wire wire;
    volatile Throwable failure;

    FakeServer(Path dir, Script script) throws IOException {
        socket = dir.resolve("fake-" + System.nanoTime() + ".sock");
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(socket));
        thread = Thread.ofVirtual().start(() -> {
            try (SocketChannel ch = listener.accept()) {
                wire = new Wire(ch);
                script.run(this);
                // hold the connection until the client leaves, so that what it sees is what the script sent
                ByteBuffer sink = ByteBuffer.allocate(1 << 16);
                while (ch.read(sink.clear()) >= 0) {
                    // drop what the client sends
                }
            } catch (Throwable e) {
                failure = e;
            }
        });
    }

    String uri() {
        return "nbd+unix:///?socket=" + socket;
    }

    /** The greeting, then options answered as a modern server answers them; returns after GO. */
    void handshake(long size, int flags, int maxBlock) throws IOException {
        greet();
        while (true) {
            ByteBuffer head = wire.read(16);
            head.getLong();
            int option = head.getInt();
            ByteBuffer data = wire.read(head.getInt());
            switch (option) {
                case Nbd.OPT_STRUCTURED_REPLY -> reply(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
                case Nbd.OPT_SET_META_CONTEXT -> {
                    byte[] name = "base:allocation".getBytes(StandardCharsets.UTF_8);
                    reply(option, Nbd.REP_META_CONTEXT, ByteBuffer.allocate(4 + name.length).putInt(1).put(name)
                            .flip());
                    reply(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
                }
                case Nbd.OPT_GO -> {
                    reply(option, Nbd.REP_INFO, ByteBuffer.allocate(12).putShort((short) Nbd.INFO_EXPORT)
                            .putLong(size).putShort((short) (flags | Nbd.FLAG_HAS_FLAGS)).flip());
                    reply(option, Nbd.REP_INFO, ByteBuffer.allocate(14).putShort((short) Nbd.INFO_BLOCK_SIZE)
                            .putInt(1).putInt(4096).putInt(maxBlock).flip());
                    reply(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
                    return;
                }
                default -> reply(option, Nbd.REP_ERR_UNSUP, ByteBuffer.allocate(0));
            }
            data.clear();
        }
    }

    void greet() throws IOException {
        wire.write(ByteBuffer.allocate(18).putLong(Nbd.NBDMAGIC).putLong(Nbd.IHAVEOPT)
                .putShort((short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES)).flip());
        wire.read(4);
    }

    void reply(int option, int type, ByteBuffer data) throws IOException {
        wire.write(ByteBuffer.allocate(20).putLong(Nbd.OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                .putInt(data.remaining()).flip(), data);
    }

    /** Reads one request header: [type, cookie, offset, length] (and skips a write's payload). */
    long[] request() throws IOException {
        ByteBuffer r = wire.read(28);
        r.getInt();
        r.getShort();
        int type = r.getShort();
        long cookie = r.getLong();
        long offset = r.getLong();
        long length = Integer.toUnsignedLong(r.getInt());
        if (type == Nbd.CMD_WRITE) {
            wire.skip(length);
        }
        return new long[] {type, cookie, offset, length};
    }

    /** A structured reply chunk header followed by {@code payload}. */
    void chunk(long cookie, boolean done, int type, long length, ByteBuffer payload) throws IOException {
        wire.write(ByteBuffer.allocate(20).putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) (done ? 1 : 0))
                .putShort((short) type).putLong(cookie).putInt((int) length).flip(), payload);
    }

    @Override
    public void close() throws IOException {
        listener.close();
        thread.interrupt();
    }
}
