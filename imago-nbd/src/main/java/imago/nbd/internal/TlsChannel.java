package imago.nbd.internal;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;

/**
 * TLS over a blocking byte channel (TCP or a Unix socket, which {@code SSLSocket} cannot wrap), with the JDK's
 * {@link SSLEngine}: what NBD's {@code NBD_OPT_STARTTLS} switches a connection to, for the server and the client.
 * One thread reads while others write (the engine allows {@code wrap} and {@code unwrap} at once); reads return
 * at least one byte or end of stream.
 */
public final class TlsChannel implements ByteChannel {
    private final ByteChannel net;
    private final SSLEngine engine;
    private final ReentrantLock readLock = new ReentrantLock();
    private final ReentrantLock writeLock = new ReentrantLock();
    /** Bytes read from the network, not yet unwrapped (read mode). */
    private ByteBuffer netIn;
    /** Plain bytes unwrapped, not yet returned (read mode). */
    private ByteBuffer appIn;
    private ByteBuffer netOut;

    private TlsChannel(ByteChannel net, SSLEngine engine) {
        this.net = net;
        this.engine = engine;
        this.netIn = ByteBuffer.allocate(engine.getSession().getPacketBufferSize()).flip();
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
        this.netOut = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
    }

    /**
     * Runs the TLS handshake on {@code net} (nothing else may use it meanwhile) and returns the secured channel.
     *
     * @throws javax.net.ssl.SSLHandshakeException if the peer or its certificate is refused
     * @throws IOException if the connection fails
     */
    public static TlsChannel handshake(ByteChannel net, SSLEngine engine) throws IOException {
        TlsChannel c = new TlsChannel(net, engine);
        engine.beginHandshake();
        HandshakeStatus status = engine.getHandshakeStatus();
        ByteBuffer none = ByteBuffer.allocate(0);
        while (status != HandshakeStatus.FINISHED && status != HandshakeStatus.NOT_HANDSHAKING) {
            switch (status) {
                case NEED_WRAP -> status = c.wrap(none).getHandshakeStatus();
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    SSLEngineResult r = c.unwrap();
                    if (r == null) {
                        throw new EOFException("the peer closed the connection during the TLS handshake");
                    }
                    status = r.getHandshakeStatus();
                }
                case NEED_TASK -> {
                    for (Runnable task; (task = engine.getDelegatedTask()) != null; ) {
                        task.run();
                    }
                    status = engine.getHandshakeStatus();
                }
                default -> throw new SSLException("unexpected TLS handshake state " + status);
            }
        }
        return c;
    }

    /** Wraps {@code src} (all of it, or a close or handshake message) and sends the records. */
    private SSLEngineResult wrap(ByteBuffer src) throws IOException {
        writeLock.lock();
        try {
            SSLEngineResult r;
            do {
                netOut.clear();
                r = engine.wrap(src, netOut);
                if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                    netOut = ByteBuffer.allocate(Math.max(netOut.capacity() * 2,
                            engine.getSession().getPacketBufferSize()));
                    continue;
                }
                netOut.flip();
                while (netOut.hasRemaining()) {
                    net.write(netOut);
                }
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    break;
                }
            } while (src.hasRemaining());
            return r;
        } finally {
            writeLock.unlock();
        }
    }

    /** Unwraps one record into {@link #appIn}, reading from the network as needed; null at end of stream. */
    private SSLEngineResult unwrap() throws IOException {
        while (true) {
            appIn.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
            }
            switch (r.getStatus()) {
                case OK, CLOSED -> {
                    return r;
                }
                case BUFFER_OVERFLOW -> {
                    ByteBuffer bigger = ByteBuffer.allocate(appIn.remaining()
                            + engine.getSession().getApplicationBufferSize());
                    appIn = bigger.put(appIn).flip();
                }
                case BUFFER_UNDERFLOW -> {
                    if (netIn.capacity() < engine.getSession().getPacketBufferSize()) {
                        netIn = ByteBuffer.allocate(engine.getSession().getPacketBufferSize()).put(netIn).flip();
                    }
                    netIn.compact();
                    int n;
                    try {
                        n = net.read(netIn);
                    } finally {
                        netIn.flip();
                    }
                    if (n < 0) {
                        return null;
                    }
                }
            }
        }
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        readLock.lock();
        try {
            while (!appIn.hasRemaining()) {
                SSLEngineResult r = unwrap();
                if (r == null || r.getStatus() == SSLEngineResult.Status.CLOSED && !appIn.hasRemaining()) {
                    return -1;
                }
                // messages after the handshake (TLS 1.3 tickets, key updates) may need an answer or a task
                HandshakeStatus status = r.getHandshakeStatus();
                while (status == HandshakeStatus.NEED_TASK || status == HandshakeStatus.NEED_WRAP) {
                    if (status == HandshakeStatus.NEED_TASK) {
                        for (Runnable task; (task = engine.getDelegatedTask()) != null; ) {
                            task.run();
                        }
                        status = engine.getHandshakeStatus();
                    } else {
                        status = wrap(ByteBuffer.allocate(0)).getHandshakeStatus();
                    }
                }
            }
            int n = Math.min(dst.remaining(), appIn.remaining());
            dst.put(appIn.slice(appIn.position(), n));
            appIn.position(appIn.position() + n);
            return n;
        } finally {
            readLock.unlock();
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        wrap(src);
        return n - src.remaining();
    }

    @Override
    public boolean isOpen() {
        return net.isOpen();
    }

    /** Sends close_notify when it can, then closes the connection. */
    @Override
    public void close() throws IOException {
        try {
            if (net.isOpen() && writeLock.tryLock()) {
                try {
                    engine.closeOutbound();
                    netOut.clear();
                    engine.wrap(ByteBuffer.allocate(0), netOut);
                    netOut.flip();
                    while (netOut.hasRemaining() && net.write(netOut) > 0) {
                        // the close_notify is a courtesy: a peer that stopped reading does not get it
                    }
                } finally {
                    writeLock.unlock();
                }
            }
        } catch (IOException ignored) {
            // the peer is gone already
        } finally {
            net.close();
        }
    }
}
