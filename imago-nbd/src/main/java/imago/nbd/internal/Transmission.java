package imago.nbd.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;

/**
 * The transmission phase of one connection: this thread reads requests one after the other, and each is served
 * on a virtual thread of its own, so that a slow request does not hold up the others (the protocol lets replies
 * come in any order). What one connection may have in flight is bounded, in requests and in payload bytes: the
 * reader waits when a client sends faster than its requests are served.
 */
final class Transmission {
    /** Requests of one connection served at once, at most. */
    static final int MAX_IN_FLIGHT = 16;
    /** Payload bytes (write data, read replies) of one connection held at once, at most. */
    static final int MAX_IN_FLIGHT_BYTES = 2 * Handshake.MAX_PAYLOAD;

    private final Wire wire;
    private final Negotiated session;
    private final Commands commands;
    private final Semaphore requests = new Semaphore(MAX_IN_FLIGHT);
    private final Semaphore bytes = new Semaphore(MAX_IN_FLIGHT_BYTES);
    private final BufferPool buffers = new BufferPool();

    Transmission(Wire wire, Negotiated session) {
        this.wire = wire;
        this.session = session;
        this.commands = new Commands(session, new Replies(wire), buffers);
    }

    /**
     * Serves requests until the client disconnects (politely or not), then waits for those in flight.
     *
     * @throws IOException if the connection fails or the client breaks the protocol
     */
    void run() throws IOException {
        try {
            while (true) {
                Request r = Request.parse(wire.read(Request.SIZE));
                if (r.type() == Nbd.CMD_DISC) {
                    return;
                }
                boolean carriesData = r.type() == Nbd.CMD_READ || r.type() == Nbd.CMD_WRITE;
                if (carriesData && r.length() > Handshake.MAX_PAYLOAD) {
                    commands.error(r, Nbd.EINVAL, "a " + (r.hasPayload() ? "write" : "read") + " of " + r.length()
                            + " bytes is larger than the maximum, " + Handshake.MAX_PAYLOAD);
                    if (r.hasPayload()) {
                        // the payload that follows is not worth reading: hang up, as the specification allows
                        throw new ProtocolException("a write payload of " + r.length() + " bytes");
                    }
                    continue;
                }
                int cost = carriesData ? (int) r.length() : 0;
                requests.acquireUninterruptibly();
                bytes.acquireUninterruptibly(cost);
                ByteBuffer payload = r.hasPayload() ? buffers.take(cost) : null;
                try {
                    if (payload != null) {
                        wire.readFully(payload);
                        payload.flip();
                    }
                } catch (IOException | RuntimeException e) {
                    buffers.give(payload);
                    bytes.release(cost);
                    requests.release();
                    throw e;
                }
                Thread.ofVirtual().name("nbd-request").start(() -> serve(r, payload, cost));
            }
        } finally {
            // nothing in flight is cut off by a polite disconnect; after a failure the replies fail fast
            requests.acquireUninterruptibly(MAX_IN_FLIGHT);
            requests.release(MAX_IN_FLIGHT);
        }
    }

    private void serve(Request r, ByteBuffer payload, int cost) {
        try {
            commands.serve(r, payload);
        } catch (IOException | RuntimeException e) {
            // the reply could not be sent: the client is gone, and so is this connection
            wire.close();
        } finally {
            buffers.give(payload);
            bytes.release(cost);
            requests.release();
        }
    }

    Negotiated session() {
        return session;
    }
}
