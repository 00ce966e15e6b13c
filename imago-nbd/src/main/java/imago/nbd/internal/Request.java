package imago.nbd.internal;

import java.nio.ByteBuffer;

/**
 * One transmission request header.
 *
 * @param flags the command flags
 * @param type the command
 * @param cookie the client's handle, echoed in the reply
 * @param offset the first byte (unsigned on the wire; a negative value here is past any export)
 * @param length the number of bytes (unsigned 32 bits)
 */
public record Request(int flags, int type, long cookie, long offset, long length) {
    /** Bytes of a request header. */
    public static final int SIZE = 28;

    /**
     * Parses a header. @throws ProtocolException if the magic is wrong: the stream cannot be trusted after that
     */
    static Request parse(ByteBuffer b) throws ProtocolException {
        int magic = b.getInt();
        if (magic != Nbd.REQUEST_MAGIC) {
            throw new ProtocolException("bad request magic 0x" + Integer.toHexString(magic));
        }
        int flags = Short.toUnsignedInt(b.getShort());
        int type = Short.toUnsignedInt(b.getShort());
        return new Request(flags, type, b.getLong(), b.getLong(), Integer.toUnsignedLong(b.getInt()));
    }

    /** The header on the wire, flipped: what a client sends (followed by the payload of a write). */
    public ByteBuffer encode() {
        return ByteBuffer.allocate(SIZE).putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt((int) length).flip();
    }

    /** Whether the request carries a payload the server must read (a write). */
    boolean hasPayload() {
        return type == Nbd.CMD_WRITE;
    }

    /**
     * The error the specification asks for when this request cannot be served on {@code session}, or 0: unknown
     * commands and flags and flags a command does not take are {@code EINVAL}, changes to a read-only export
     * {@code EPERM}, writes past the end {@code ENOSPC}, other requests past the end {@code EINVAL}.
     */
    int check(Negotiated session) {
        Export export = session.export();
        int allowed = switch (type) {
            case Nbd.CMD_READ -> session.structured() ? Nbd.CMD_FLAG_DF : 0;
            case Nbd.CMD_WRITE, Nbd.CMD_TRIM -> Nbd.CMD_FLAG_FUA;
            case Nbd.CMD_WRITE_ZEROES -> Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO;
            case Nbd.CMD_BLOCK_STATUS -> Nbd.CMD_FLAG_REQ_ONE;
            case Nbd.CMD_FLUSH, Nbd.CMD_CACHE, Nbd.CMD_DISC -> 0;
            default -> -1;
        };
        if (allowed < 0 || (flags & ~allowed) != 0) {
            return Nbd.EINVAL;
        }
        boolean changes = type == Nbd.CMD_WRITE || type == Nbd.CMD_TRIM || type == Nbd.CMD_WRITE_ZEROES;
        if (changes && export.readOnly()) {
            return Nbd.EPERM;
        }
        if (type == Nbd.CMD_FLUSH || type == Nbd.CMD_DISC) {
            return 0;
        }
        if (type == Nbd.CMD_BLOCK_STATUS && (!session.structured() || session.contexts().isEmpty() || length == 0)) {
            return Nbd.EINVAL;
        }
        long size = export.size();
        if (offset < 0 || offset > size || length > size - offset) {
            return type == Nbd.CMD_WRITE || type == Nbd.CMD_WRITE_ZEROES ? Nbd.ENOSPC : Nbd.EINVAL;
        }
        return 0;
    }
}
