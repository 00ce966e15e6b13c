package imago.nbd.internal.client;

import imago.api.ImageException;
import imago.nbd.internal.Nbd;
import imago.nbd.internal.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The fixed newstyle handshake, client side: structured replies and the {@code base:allocation} meta context when
 * the server has them, then {@code NBD_OPT_GO} asking for the block size constraints, or {@code NBD_OPT_EXPORT_NAME}
 * when the server does not know GO. Every reply is bounded before it is read.
 */
final class ClientHandshake {
    /** The longest option reply read into memory. */
    static final int MAX_REPLY = 64 * 1024;
    private static final String BASE_ALLOCATION = "base:allocation";

    private final Wire wire;
    private final String resource;
    private final String export;
    private boolean noZeroes;
    private boolean structured;
    private int baseAllocation = -1;

    ClientHandshake(Wire wire, String resource, String export) {
        this.wire = wire;
        this.resource = resource;
        this.export = export;
    }

    /**
     * Runs the handshake up to the transmission phase.
     *
     * @throws ImageException if the server refuses the export or breaks the protocol
     * @throws IOException if the connection fails
     */
    ExportInfo run(ClientTls tls) throws IOException {
        ByteBuffer greeting = wire.read(16);
        if (greeting.getLong() != Nbd.NBDMAGIC) {
            throw fail("not an NBD server (no NBDMAGIC greeting)");
        }
        long second = greeting.getLong();
        if (second == Nbd.OLDSTYLE_MAGIC) {
            throw fail("the server speaks the oldstyle protocol, which is not supported");
        }
        if (second != Nbd.IHAVEOPT) {
            throw fail("bad greeting magic 0x" + Long.toHexString(second));
        }
        int serverFlags = Short.toUnsignedInt(wire.read(2).getShort());
        boolean fixed = (serverFlags & Nbd.FLAG_FIXED_NEWSTYLE) != 0;
        noZeroes = (serverFlags & Nbd.FLAG_NO_ZEROES) != 0;
        int clientFlags = serverFlags & Nbd.CLIENT_FLAGS_KNOWN;
        wire.write(ByteBuffer.allocate(4).putInt(clientFlags).flip());
        if (tls != null) {
            if (!fixed) {
                throw fail("TLS was asked for, but the server does not speak the fixed newstyle protocol");
            }
            send(Nbd.OPT_STARTTLS, ByteBuffer.allocate(0));
            Reply r = reply(Nbd.OPT_STARTTLS);
            if (r.type() != Nbd.REP_ACK) {
                throw fail("the server does not do TLS" + (r.message().isBlank() ? "" : ": " + r.message()));
            }
            wire.upgrade(tls.handshake(wire.channel()));
        }
        if (!fixed) {
            return exportName();
        }
        negotiateStructured();
        ExportInfo go = go();
        return go != null ? go : exportName();
    }

    /** Sends an option with its data. */
    void send(int option, ByteBuffer data) throws IOException {
        wire.write(ByteBuffer.allocate(16).putLong(Nbd.IHAVEOPT).putInt(option).putInt(data.remaining()).flip(), data);
    }

    /** Reads one reply to {@code option}, bounded. */
    Reply reply(int option) throws IOException {
        ByteBuffer head = wire.read(20);
        long magic = head.getLong();
        if (magic != Nbd.OPTION_REPLY_MAGIC) {
            throw fail("bad option reply magic 0x" + Long.toHexString(magic));
        }
        int replyTo = head.getInt();
        int type = head.getInt();
        long length = Integer.toUnsignedLong(head.getInt());
        if (replyTo != option) {
            throw fail("a reply to option " + replyTo + " while waiting for option " + option);
        }
        if (length > MAX_REPLY) {
            throw fail("an option reply of " + length + " bytes (at most " + MAX_REPLY + ")");
        }
        return new Reply(type, wire.read((int) length));
    }

    /** One option reply. */
    record Reply(int type, ByteBuffer data) {
        boolean error() {
            return (type & Nbd.REP_FLAG_ERROR) != 0;
        }

        String message() {
            return StandardCharsets.UTF_8.decode(data.duplicate()).toString();
        }
    }

    private void negotiateStructured() throws IOException {
        send(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
        Reply r = reply(Nbd.OPT_STRUCTURED_REPLY);
        structured = r.type() == Nbd.REP_ACK;
        if (!structured && !r.error()) {
            throw fail("unexpected reply type " + r.type() + " to NBD_OPT_STRUCTURED_REPLY");
        }
        if (!structured) {
            return;
        }
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        byte[] query = BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);
        send(Nbd.OPT_SET_META_CONTEXT, ByteBuffer.allocate(12 + name.length + query.length).putInt(name.length)
                .put(name).putInt(1).putInt(query.length).put(query).flip());
        while (true) {
            Reply m = reply(Nbd.OPT_SET_META_CONTEXT);
            if (m.type() == Nbd.REP_ACK || m.error()) {
                return; // a server without meta contexts still serves the export: everything is data then
            }
            if (m.type() != Nbd.REP_META_CONTEXT || m.data().remaining() < 4) {
                throw fail("unexpected reply type " + m.type() + " to NBD_OPT_SET_META_CONTEXT");
            }
            int id = m.data().getInt();
            if (StandardCharsets.UTF_8.decode(m.data()).toString().equals(BASE_ALLOCATION)) {
                baseAllocation = id;
            }
        }
    }

    /** GO with a request for the block sizes; {@code null} if the server does not know GO. */
    private ExportInfo go() throws IOException {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        send(Nbd.OPT_GO, ByteBuffer.allocate(8 + name.length).putInt(name.length).put(name).putShort((short) 1)
                .putShort((short) Nbd.INFO_BLOCK_SIZE).flip());
        long size = -1;
        int flags = 0;
        int min = 1;
        int max = ExportInfo.DEFAULT_MAX_BLOCK;
        while (true) {
            Reply r = reply(Nbd.OPT_GO);
            if (r.type() == Nbd.REP_ERR_UNSUP) {
                return null;
            }
            if (r.error()) {
                throw fail(refusal(r));
            }
            if (r.type() == Nbd.REP_ACK) {
                break;
            }
            if (r.type() != Nbd.REP_INFO || r.data().remaining() < 2) {
                throw fail("unexpected reply type " + r.type() + " to NBD_OPT_GO");
            }
            ByteBuffer d = r.data();
            int info = Short.toUnsignedInt(d.getShort());
            if (info == Nbd.INFO_EXPORT && d.remaining() == 10) {
                size = d.getLong();
                flags = Short.toUnsignedInt(d.getShort());
            } else if (info == Nbd.INFO_BLOCK_SIZE && d.remaining() == 12) {
                min = d.getInt();
                d.getInt(); // the preferred size: imago's own requests are large already
                max = d.getInt();
                if (min < 1 || min > 65536 || Integer.bitCount(min) != 1 || (max != -1 && (max < min || max % min != 0))) {
                    throw fail("bad block size constraints: minimum " + Integer.toUnsignedString(min) + ", maximum "
                            + Integer.toUnsignedString(max));
                }
                max = max == -1 ? Integer.MAX_VALUE & -min : max;
            } else if (info == Nbd.INFO_EXPORT || info == Nbd.INFO_BLOCK_SIZE) {
                throw fail("NBD_INFO " + info + " of " + d.remaining() + " bytes");
            }
        }
        if (size < 0) {
            throw fail("NBD_OPT_GO ended without the export's size");
        }
        return new ExportInfo(size, flags, min, max, structured, baseAllocation);
    }

    private ExportInfo exportName() throws IOException {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        send(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap(name));
        ByteBuffer b;
        try {
            b = wire.read(10);
        } catch (java.io.EOFException e) {
            throw fail("the server has no export '" + export + "' (it closed the connection)");
        }
        long size = b.getLong();
        int flags = Short.toUnsignedInt(b.getShort());
        if (!noZeroes) {
            wire.skip(124);
        }
        if (size < 0) {
            throw fail("an export of " + Long.toUnsignedString(size) + " bytes");
        }
        return new ExportInfo(size, flags, 1, ExportInfo.DEFAULT_MAX_BLOCK, structured, baseAllocation);
    }

    private String refusal(Reply r) {
        String why = switch (r.type()) {
            case Nbd.REP_ERR_UNKNOWN -> "the server has no export '" + export + "'";
            case Nbd.REP_ERR_TLS_REQD -> "the server requires TLS (use nbds://)";
            case Nbd.REP_ERR_POLICY -> "the server refused export '" + export + "' by policy";
            default -> "the server refused export '" + export + "' (reply 0x" + Integer.toHexString(r.type()) + ")";
        };
        String message = r.message();
        return message.isBlank() ? why : why + ": " + message;
    }

    ImageException fail(String message) {
        return new ImageException(resource, message);
    }
}
