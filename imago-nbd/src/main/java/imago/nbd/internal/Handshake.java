package imago.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The fixed newstyle handshake, server side: greets, reads the client's flags, then answers options until one
 * leads into transmission ({@code NBD_OPT_GO} or {@code NBD_OPT_EXPORT_NAME}) or the client aborts. Every option
 * is bounded by {@link #MAX_OPTION_LENGTH}; a longer one is skipped and refused with {@code NBD_REP_ERR_TOO_BIG}.
 */
final class Handshake {
    /** The longest option data read into memory (a GO with a 4 KiB name, or many meta context queries). */
    static final int MAX_OPTION_LENGTH = 64 * 1024;
    /** The most bytes of an over-long option the server reads past before hanging up instead. */
    static final long MAX_SKIPPED_OPTION = 16L << 20;
    /** The block sizes advertised: any alignment works, 4 KiB is best, 32 MiB is the largest payload. */
    static final int MIN_BLOCK = 1;
    static final int PREFERRED_BLOCK = 4096;
    static final int MAX_PAYLOAD = 32 << 20;

    private final Wire wire;
    private final Replies replies;
    private final Export export;
    private boolean structured;
    /** Whether the connection runs over TLS (after NBD_OPT_STARTTLS). */
    private boolean secured;
    private boolean noZeroes;
    private List<MetaContext> contexts = List.of();

    Handshake(Wire wire, Export export) {
        this.wire = wire;
        this.replies = new Replies(wire);
        this.export = export;
    }

    /**
     * Runs the handshake. @return what was agreed, or {@code null} if the client aborted or left cleanly
     * @throws ProtocolException if the client broke the protocol (the connection is to be closed)
     * @throws IOException if the connection fails
     */
    Negotiated run() throws IOException {
        wire.write(ByteBuffer.allocate(18).putLong(Nbd.NBDMAGIC).putLong(Nbd.IHAVEOPT)
                .putShort((short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES)).flip());
        int clientFlags = wire.read(4).getInt();
        if ((clientFlags & ~Nbd.CLIENT_FLAGS_KNOWN) != 0) {
            throw new ProtocolException("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        noZeroes = (clientFlags & Nbd.FLAG_NO_ZEROES) != 0;
        while (true) {
            ByteBuffer head = wire.read(16);
            long magic = head.getLong();
            if (magic != Nbd.IHAVEOPT) {
                throw new ProtocolException("bad option magic 0x" + Long.toHexString(magic));
            }
            int option = head.getInt();
            long length = Integer.toUnsignedLong(head.getInt());
            if (export.tls() != null && !secured && option != Nbd.OPT_STARTTLS) {
                if (refuseBeforeTls(option, length)) {
                    return null;
                }
                continue;
            }
            if (length > MAX_OPTION_LENGTH) {
                if (option == Nbd.OPT_EXPORT_NAME || length > MAX_SKIPPED_OPTION) {
                    throw new ProtocolException("option " + option + " of " + length + " bytes");
                }
                wire.skip(length);
                replies.optionError(option, Nbd.REP_ERR_TOO_BIG, "option data of " + length
                        + " bytes is too long (at most " + MAX_OPTION_LENGTH + ")");
                continue;
            }
            ByteBuffer data = wire.read((int) length);
            ClientOption parsed;
            try {
                parsed = ClientOption.parse(option, data);
            } catch (OptionException e) {
                if (option == Nbd.OPT_EXPORT_NAME) {
                    throw new ProtocolException("bad export name: " + e.getMessage());
                }
                replies.optionError(option, e.reply(), e.getMessage());
                continue;
            }
            Negotiated done = answer(option, parsed);
            if (done != null) {
                return done;
            }
            if (parsed instanceof ClientOption.Abort) {
                return null;
            }
        }
    }

    /** Answers one option; returns the agreement when it leads into transmission. */
    private Negotiated answer(int option, ClientOption parsed) throws IOException {
        switch (parsed) {
            case ClientOption.ExportName(String name) -> {
                if (!name.equals(export.name())) {
                    // this option has no error reply: the specification says to hang up
                    throw new ProtocolException("no export named '" + name + "'");
                }
                ByteBuffer b = ByteBuffer.allocate(noZeroes ? 10 : 134).putLong(export.size())
                        .putShort((short) export.transmissionFlags(structured));
                wire.write(b.position(b.capacity()).flip());
                return new Negotiated(export, structured, contexts);
            }
            case ClientOption.Abort() -> replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
            case ClientOption.ListExports() -> {
                // the name, then the description as the reply's free-form details
                byte[] name = export.name().getBytes(StandardCharsets.UTF_8);
                byte[] details = export.description() == null ? new byte[0]
                        : export.description().getBytes(StandardCharsets.UTF_8);
                replies.option(option, Nbd.REP_SERVER, ByteBuffer.allocate(4 + name.length + details.length)
                        .putInt(name.length).put(name).put(details).flip());
                replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
            }
            case ClientOption.StartTls() -> startTls(option);
            case ClientOption.StructuredReply() -> {
                if (structured) {
                    replies.optionError(option, Nbd.REP_ERR_INVALID, "structured replies are already negotiated");
                } else {
                    structured = true;
                    replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
                }
            }
            case ClientOption.Info info -> {
                return info(option, info);
            }
            case ClientOption.MetaContexts meta -> metaContexts(option, meta);
            case ClientOption.Unknown u ->
                    replies.optionError(option, Nbd.REP_ERR_UNSUP, "option " + u.option() + " is not supported");
        }
        return null;
    }

    /**
     * What a server with TLS answers to an option before STARTTLS, as qemu-nbd answers: {@code NBD_REP_ERR_TLS_REQD},
     * an acknowledged ABORT (true: the client leaves), or a hang-up for EXPORT_NAME, which has no error reply.
     */
    private boolean refuseBeforeTls(int option, long length) throws IOException {
        String message = "Option 0x" + Integer.toHexString(option) + " not permitted before TLS";
        if (option == Nbd.OPT_EXPORT_NAME || length > MAX_SKIPPED_OPTION) {
            throw new ProtocolException(message);
        }
        wire.skip(length);
        if (option == Nbd.OPT_ABORT) {
            replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
            return true;
        }
        replies.optionError(option, Nbd.REP_ERR_TLS_REQD, message);
        return false;
    }

    /** NBD_OPT_STARTTLS: acknowledged, then the TLS handshake, then the options go on over TLS. */
    private void startTls(int option) throws IOException {
        if (export.tls() == null) {
            replies.optionError(option, Nbd.REP_ERR_POLICY, "TLS is not configured on this server");
            return;
        }
        if (secured) {
            replies.optionError(option, Nbd.REP_ERR_INVALID, "TLS is already enabled");
            return;
        }
        replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
        javax.net.ssl.SSLEngine engine = export.tls().context().createSSLEngine();
        engine.setUseClientMode(false);
        engine.setNeedClientAuth(export.tls().verifyPeer());
        wire.upgrade(TlsChannel.handshake(wire.channel(), engine));
        secured = true;
    }

    private Negotiated info(int option, ClientOption.Info info) throws IOException {
        if (!info.name().equals(export.name())) {
            replies.optionError(option, Nbd.REP_ERR_UNKNOWN, "export '" + info.name() + "' not present");
            return null;
        }
        int flags = export.transmissionFlags(structured);
        replies.option(option, Nbd.REP_INFO, ByteBuffer.allocate(12).putShort((short) Nbd.INFO_EXPORT)
                .putLong(export.size()).putShort((short) flags).flip());
        if (info.requests().contains(Nbd.INFO_NAME)) {
            byte[] name = export.name().getBytes(StandardCharsets.UTF_8);
            replies.option(option, Nbd.REP_INFO, ByteBuffer.allocate(2 + name.length)
                    .putShort((short) Nbd.INFO_NAME).put(name).flip());
        }
        if (info.requests().contains(Nbd.INFO_DESCRIPTION) && export.description() != null) {
            byte[] text = export.description().getBytes(StandardCharsets.UTF_8);
            replies.option(option, Nbd.REP_INFO, ByteBuffer.allocate(2 + text.length)
                    .putShort((short) Nbd.INFO_DESCRIPTION).put(text).flip());
        }
        // sent whether asked or not: the constraints hold for every client, and a minimum of 1 binds no one
        replies.option(option, Nbd.REP_INFO, ByteBuffer.allocate(14).putShort((short) Nbd.INFO_BLOCK_SIZE)
                .putInt(MIN_BLOCK).putInt(PREFERRED_BLOCK).putInt(MAX_PAYLOAD).flip());
        replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
        return info.go() ? new Negotiated(export, structured, contexts) : null;
    }

    private void metaContexts(int option, ClientOption.MetaContexts meta) throws IOException {
        if (!structured) {
            replies.optionError(option, Nbd.REP_ERR_INVALID, "negotiate structured replies first");
            return;
        }
        if (!meta.export().equals(export.name())) {
            replies.optionError(option, Nbd.REP_ERR_UNKNOWN, "export '" + meta.export() + "' not present");
            return;
        }
        List<MetaContext> chosen = MetaContext.resolve(export.contexts(), meta.queries(), meta.set());
        for (MetaContext c : chosen) {
            byte[] name = c.name().getBytes(StandardCharsets.UTF_8);
            replies.option(option, Nbd.REP_META_CONTEXT, ByteBuffer.allocate(4 + name.length).putInt(c.id())
                    .put(name).flip());
        }
        if (meta.set()) {
            contexts = chosen;
        }
        replies.option(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
    }
}
