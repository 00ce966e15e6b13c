package imago.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Writes the replies of the handshake and of the transmission phase. */
final class Replies {
    private final Wire wire;

    Replies(Wire wire) {
        this.wire = wire;
    }

    /** An option reply: magic, option, type, length, data. */
    void option(int option, int type, ByteBuffer data) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(20).putLong(Nbd.OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                .putInt(data.remaining()).flip();
        wire.write(head, data);
    }

    /** An option error reply with a message. */
    void optionError(int option, int type, String message) throws IOException {
        option(option, type, ByteBuffer.wrap(truncate(message)));
    }

    /** A simple reply: error and, on success of a read, the data. */
    void simple(long cookie, int error, ByteBuffer data) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(16).putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
        if (data == null) {
            wire.write(head);
        } else {
            wire.write(head, data);
        }
    }

    /** One structured reply chunk whose payload is {@code head} (may be empty) followed by {@code data}. */
    void chunk(long cookie, boolean done, int type, ByteBuffer head, ByteBuffer data) throws IOException {
        int length = head.remaining() + (data == null ? 0 : data.remaining());
        ByteBuffer h = ByteBuffer.allocate(20).putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) (done ? 1 : 0))
                .putShort((short) type).putLong(cookie).putInt(length).flip();
        if (data == null) {
            wire.write(h, head);
        } else {
            wire.write(h, head, data);
        }
    }

    /** A structured error chunk, the last of its reply. */
    void errorChunk(long cookie, int error, String message) throws IOException {
        byte[] text = truncate(message);
        ByteBuffer payload = ByteBuffer.allocate(6 + text.length).putInt(error).putShort((short) text.length)
                .put(text).flip();
        chunk(cookie, true, Nbd.REPLY_TYPE_ERROR, payload, null);
    }

    /** A message's UTF-8 bytes, cut to the specification's string bound without splitting a character. */
    private static byte[] truncate(String message) {
        String m = message == null ? "" : message;
        byte[] b = m.getBytes(StandardCharsets.UTF_8);
        while (b.length > Nbd.MAX_STRING) {
            m = m.substring(0, m.length() * 3 / 4);
            b = m.getBytes(StandardCharsets.UTF_8);
        }
        return b;
    }
}
