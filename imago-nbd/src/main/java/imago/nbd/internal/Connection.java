package imago.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.channels.ByteChannel;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * One client, from greeting to hang-up: the handshake (which must finish within a time limit, so that idle
 * peers do not hold a connection slot) and then the transmission phase.
 */
final class Connection {
    private static final System.Logger LOG = System.getLogger("imago.nbd");

    private final Wire wire;
    private final Export export;

    Connection(ByteChannel channel, Export export) {
        this.wire = new Wire(channel);
        this.export = export;
    }

    /** Serves the client until it leaves or fails; never throws. */
    void run(ScheduledExecutorService timer, Duration handshakeLimit) {
        try {
            Negotiated session;
            ScheduledFuture<?> limit = timer.schedule(wire::close, handshakeLimit.toMillis(), TimeUnit.MILLISECONDS);
            try {
                session = new Handshake(wire, export).run();
            } finally {
                limit.cancel(false);
            }
            if (session != null && wire.isOpen()) {
                new Transmission(wire, session).run();
            }
        } catch (EOFException e) {
            LOG.log(Level.DEBUG, "client left: {0}", e.getMessage());
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.DEBUG, "connection ended: {0}", e.toString());
        } finally {
            wire.close();
        }
    }

    /** Ends the connection from outside (server shutdown). */
    void close() {
        wire.close();
    }
}
