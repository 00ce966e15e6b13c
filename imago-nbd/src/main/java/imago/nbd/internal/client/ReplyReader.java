package imago.nbd.internal.client;

import imago.api.ImageException;
import imago.nbd.internal.Nbd;
import imago.nbd.internal.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Reads the replies of one connection, in the order the server sends them, and hands each to the request it
 * answers. Nothing the server says is trusted: every length is checked against the request before anything is
 * read or allocated (read data goes straight into the caller's buffer, at the offset the chunk names, inside the
 * request), and a reply that breaks the protocol ends the connection with an {@link ImageException} saying how.
 */
final class ReplyReader {
    /** The most block status descriptors one chunk may carry (8 bytes each). */
    static final int MAX_DESCRIPTORS = 1 << 17;
    /** The longest error chunk: code, length, a specification-sized message and an offset. */
    private static final int MAX_ERROR_CHUNK = 6 + Nbd.MAX_STRING + 8;

    private final Wire wire;
    private final String resource;
    private final ExportInfo info;
    private final Map<Long, Pending> pending;

    ReplyReader(Wire wire, String resource, ExportInfo info, Map<Long, Pending> pending) {
        this.wire = wire;
        this.resource = resource;
        this.info = info;
        this.pending = pending;
    }

    /** Reads one reply (or one chunk of a structured reply) and returns the request it completed, or null. */
    Pending next() throws IOException {
        int magic = wire.read(4).getInt();
        if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
            ByteBuffer head = wire.read(12);
            int error = head.getInt();
            Pending p = owner(head.getLong());
            if (error != 0) {
                p.error(error, null, -1);
            } else if (p.destination != null) {
                if (info.structured()) {
                    // with structured replies negotiated, a read's data comes only in chunks
                    throw protocol("a simple reply with data to a read, after structured replies were agreed");
                }
                wire.readFully(p.destination.duplicate());
                p.covered = p.request.length();
            }
            pending.remove(p.request.cookie());
            return p;
        }
        if (magic != Nbd.STRUCTURED_REPLY_MAGIC) {
            throw protocol("bad reply magic 0x" + Integer.toHexString(magic));
        }
        if (!info.structured()) {
            throw protocol("a structured reply, which was not agreed");
        }
        ByteBuffer head = wire.read(16);
        int flags = Short.toUnsignedInt(head.getShort());
        int type = Short.toUnsignedInt(head.getShort());
        Pending p = owner(head.getLong());
        long length = Integer.toUnsignedLong(head.getInt());
        chunk(p, type, length);
        if ((flags & Nbd.REPLY_FLAG_DONE) == 0) {
            return null;
        }
        if (p.destination != null && !p.hasError() && p.covered != p.request.length()) {
            throw protocol("the reply to a read of " + p.request.length() + " bytes at " + p.request.offset()
                    + " covered " + p.covered + " of them");
        }
        pending.remove(p.request.cookie());
        return p;
    }

    private void chunk(Pending p, int type, long length) throws IOException {
        switch (type) {
            case Nbd.REPLY_TYPE_NONE -> {
                if (length != 0) {
                    throw protocol("an NBD_REPLY_TYPE_NONE chunk of " + length + " bytes");
                }
            }
            case Nbd.REPLY_TYPE_OFFSET_DATA -> {
                if (p.destination == null || length < 8 || length - 8 > p.request.length()) {
                    throw protocol("a data chunk of " + length + " bytes to " + what(p));
                }
                long offset = wire.read(8).getLong();
                int at = within(p, offset, length - 8);
                wire.readFully(p.destination.duplicate().position(at).limit(at + (int) (length - 8)));
                cover(p, length - 8);
            }
            case Nbd.REPLY_TYPE_OFFSET_HOLE -> {
                if (p.destination == null || length != 12) {
                    throw protocol("a hole chunk of " + length + " bytes to " + what(p));
                }
                ByteBuffer b = wire.read(12);
                long offset = b.getLong();
                long hole = Integer.toUnsignedLong(b.getInt());
                int at = within(p, offset, hole);
                ByteBuffer dst = p.destination.duplicate().position(at).limit(at + (int) hole);
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                cover(p, hole);
            }
            case Nbd.REPLY_TYPE_BLOCK_STATUS -> {
                if (p.request.type() != Nbd.CMD_BLOCK_STATUS || length < 12 || (length - 4) % 8 != 0
                        || (length - 4) / 8 > MAX_DESCRIPTORS) {
                    throw protocol("a block status chunk of " + length + " bytes to " + what(p));
                }
                ByteBuffer b = wire.read((int) length);
                if (p.descriptors.size() + (length - 4) / 8 > MAX_DESCRIPTORS) {
                    throw protocol("more than " + MAX_DESCRIPTORS + " block status descriptors in one reply");
                }
                int context = b.getInt();
                if (context != info.baseAllocation()) {
                    throw protocol("block status for meta context " + context + ", which was not agreed");
                }
                while (b.hasRemaining()) {
                    long extent = Integer.toUnsignedLong(b.getInt());
                    int state = b.getInt();
                    if (extent == 0) {
                        throw protocol("a block status descriptor of 0 bytes");
                    }
                    p.descriptors.add(new long[] {extent, state});
                }
            }
            default -> {
                if ((type & 0x8000) == 0 || length < 6 || length > MAX_ERROR_CHUNK) {
                    throw protocol("a chunk of type " + type + " and " + length + " bytes to " + what(p));
                }
                ByteBuffer b = wire.read((int) length);
                int error = b.getInt();
                int textLength = Short.toUnsignedInt(b.getShort());
                if (textLength > b.remaining()) {
                    throw protocol("an error message of " + textLength + " bytes in a chunk of " + length);
                }
                String text = StandardCharsets.UTF_8.decode(b.slice(b.position(), textLength)).toString();
                b.position(b.position() + textLength);
                long offset = type == Nbd.REPLY_TYPE_ERROR_OFFSET && b.remaining() == 8 ? b.getLong() : -1;
                // an error type this client does not know still is an error: EIO if it gave none
                p.error(type == Nbd.REPLY_TYPE_ERROR || type == Nbd.REPLY_TYPE_ERROR_OFFSET ? error : Nbd.EIO, text,
                        offset);
            }
        }
    }

    /** Counts the bytes of a read's chunk; chunks must not overlap, so they cover at most the request. */
    private void cover(Pending p, long bytes) throws ImageException {
        p.covered += bytes;
        if (p.covered > p.request.length()) {
            throw protocol("the chunks of the reply to " + what(p) + " overlap");
        }
    }

    /** The request with this cookie; one the client did not send (or that was answered) breaks the protocol. */
    private Pending owner(long cookie) throws ImageException {
        Pending p = pending.get(cookie);
        if (p == null) {
            throw protocol("a reply for cookie " + Long.toUnsignedString(cookie) + ", which no request in flight has");
        }
        return p;
    }

    /** The position in the request's buffer of a chunk at {@code offset}, which must lie inside the request. */
    private int within(Pending p, long offset, long length) throws ImageException {
        long start = p.request.offset();
        if (offset < start || length > p.request.length() || offset - start > p.request.length() - length) {
            throw protocol("a chunk of " + length + " bytes at " + Long.toUnsignedString(offset) + " in the reply to "
                    + what(p));
        }
        return (int) (offset - start);
    }

    private static String what(Pending p) {
        return ErrorCodes.command(p.request.type()) + " of " + p.request.length() + " bytes at "
                + p.request.offset();
    }

    private ImageException protocol(String message) {
        return new ImageException(resource, "the NBD server broke the protocol: " + message);
    }
}
