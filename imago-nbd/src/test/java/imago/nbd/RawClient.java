package imago.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** A hand-driven NBD client that can send anything, for the tests of bad peers. */
final class RawClient implements AutoCloseable {
    static final long NBDMAGIC = 0x4e42444d41474943L;
    static final long IHAVEOPT = 0x49484156454f5054L;
    static final long REPLY_MAGIC = 0x3e889045565a9L;

    /** One option reply. */
    record OptionReply(int option, int type, ByteBuffer data) {
    }

    /** One reply of the transmission phase: simple (type -1) or a structured chunk. */
    record Reply(boolean structured, int flags, int type, long cookie, int error, ByteBuffer payload) {
    }

    final SocketChannel channel;

    RawClient(Path socket) throws IOException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
    }

    /** Reads the greeting and answers with {@code flags}. */
    RawClient hello(int flags) throws IOException {
        ByteBuffer g = read(18);
        assertEquals(NBDMAGIC, g.getLong());
        assertEquals(IHAVEOPT, g.getLong());
        assertEquals(3, g.getShort());
        write(ByteBuffer.allocate(4).putInt(flags).flip());
        return this;
    }

    void option(int option, ByteBuffer data) throws IOException {
        write(ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(option).putInt(data.remaining()).flip(), data);
    }

    OptionReply optionReply() throws IOException {
        ByteBuffer h = read(20);
        assertEquals(REPLY_MAGIC, h.getLong());
        int option = h.getInt();
        int type = h.getInt();
        return new OptionReply(option, type, read(h.getInt()));
    }

    /** The data of an INFO/GO/LIST/SET_META_CONTEXT option: export name, then the rest. */
    static ByteBuffer named(String export, ByteBuffer rest) {
        byte[] n = export.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + n.length + rest.remaining()).putInt(n.length).put(n).put(rest).flip();
    }

    /** Negotiates structured replies (optionally) and base:allocation, then goes into transmission. */
    RawClient go(String export, boolean structured) throws IOException {
        if (structured) {
            option(8, ByteBuffer.allocate(0));
            assertEquals(1, optionReply().type());
            byte[] q = "base:allocation".getBytes(StandardCharsets.UTF_8);
            option(10, named(export, ByteBuffer.allocate(8 + q.length).putInt(1).putInt(q.length).put(q).flip()));
            assertEquals(4, optionReply().type());
            assertEquals(1, optionReply().type());
        }
        option(7, named(export, ByteBuffer.allocate(2).putShort((short) 0).flip()));
        OptionReply r;
        do {
            r = optionReply();
        } while (r.type() == 3);
        assertEquals(1, r.type(), "GO acknowledged");
        return this;
    }

    void request(int flags, int type, long cookie, long offset, long length, ByteBuffer data) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(28).putInt(0x25609513).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt((int) length).flip();
        if (data == null) {
            write(h);
        } else {
            write(h, data);
        }
    }

    /** A reply; for a simple reply to a read, {@code readLength} bytes of data follow a success. */
    Reply reply(int readLength) throws IOException {
        int magic = read(4).getInt();
        if (magic == 0x67446698) {
            ByteBuffer h = read(12);
            int error = h.getInt();
            long cookie = h.getLong();
            return new Reply(false, 0, -1, cookie, error, error == 0 && readLength > 0 ? read(readLength)
                    : ByteBuffer.allocate(0));
        }
        assertEquals(0x668e33ef, magic, "structured reply magic");
        ByteBuffer h = read(16);
        int flags = h.getShort();
        int type = Short.toUnsignedInt(h.getShort());
        long cookie = h.getLong();
        ByteBuffer payload = read(h.getInt());
        int error = (type & 0x8000) != 0 ? payload.getInt(0) : 0;
        return new Reply(true, flags, type, cookie, error, payload);
    }

    void write(ByteBuffer... buffers) throws IOException {
        for (ByteBuffer b : buffers) {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }
    }

    ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new EOFException("server closed with " + b.remaining() + " of " + n + " bytes unread");
            }
        }
        return b.flip();
    }

    /** Whether the server closed the connection (reads end) within a few seconds. */
    boolean closedByServer() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(1024);
        try {
            while (true) {
                int n = channel.read(b.clear());
                if (n < 0) {
                    return true;
                }
            }
        } catch (IOException e) {
            return true;
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
