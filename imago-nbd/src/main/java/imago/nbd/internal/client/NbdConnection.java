package imago.nbd.internal.client;

import imago.api.ImageException;
import imago.nbd.internal.Nbd;
import imago.nbd.internal.Request;
import imago.nbd.internal.Wire;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One connection to an NBD server in the transmission phase. Any thread may send requests; up to
 * {@link #MAX_IN_FLIGHT} are in flight at once, and one reader thread hands each reply to the request it answers,
 * in whatever order the server sends them. A request without a reply within the timeout, a reply that breaks the
 * protocol, or a broken connection fails every request in flight and every later one, with the cause.
 */
final class NbdConnection implements Closeable {
    /** Requests one connection has in flight, at most. */
    static final int MAX_IN_FLIGHT = 16;

    private final String resource;
    private final Wire wire;
    private final ExportInfo info;
    private final long timeoutNanos;
    private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
    private final AtomicLong cookies = new AtomicLong();
    private final Semaphore slots = new Semaphore(MAX_IN_FLIGHT);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Thread reader;
    private volatile IOException failure;

    private NbdConnection(String resource, Wire wire, ExportInfo info, Duration timeout) {
        this.resource = resource;
        this.wire = wire;
        this.info = info;
        this.timeoutNanos = timeout.toNanos();
        this.reader = Thread.ofVirtual().name("nbd-client-replies").unstarted(this::readReplies);
    }

    /**
     * Connects to {@code uri} and runs the handshake, all of it within {@code timeout}; requests then wait at most
     * {@code timeout} for their replies.
     *
     * @throws ImageException if the server refuses the export, breaks the protocol or is too slow
     * @throws IOException if the connection fails
     */
    static NbdConnection open(NbdUri uri, Duration timeout) throws IOException {
        ClientTls tls = uri.tls() ? ClientTls.of(uri) : null;
        SocketAddress target = uri.address();
        SocketChannel channel;
        if (target instanceof InetSocketAddress inet) {
            InetSocketAddress resolved = new InetSocketAddress(inet.getHostString(), inet.getPort());
            if (resolved.isUnresolved()) {
                throw new ImageException(uri.text(), "unknown host '" + inet.getHostString() + "'");
            }
            channel = SocketChannel.open(resolved.getAddress() instanceof java.net.Inet6Address
                    ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET);
            // requests are whole messages written at once: Nagle would hold small ones back for an ACK
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            target = resolved;
        } else {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        }
        Wire wire = new Wire(channel);
        AtomicBoolean finished = new AtomicBoolean();
        AtomicBoolean timedOut = new AtomicBoolean();
        // blocking channels have no read timeout: a watchdog closes the channel if the handshake takes too long
        Thread watchdog = Thread.ofVirtual().name("nbd-client-handshake").start(() -> {
            try {
                Thread.sleep(timeout);
            } catch (InterruptedException e) {
                return;
            }
            if (!finished.get()) {
                timedOut.set(true);
                wire.close();
            }
        });
        try {
            channel.connect(target);
            ExportInfo info = new ClientHandshake(wire, uri.text(), uri.export()).run(tls);
            finished.set(true);
            watchdog.interrupt();
            NbdConnection c = new NbdConnection(uri.text(), wire, info, timeout);
            c.reader.start();
            return c;
        } catch (IOException | RuntimeException e) {
            finished.set(true);
            watchdog.interrupt();
            wire.close();
            if (timedOut.get()) {
                throw new ImageException(uri.text(), -1, "the NBD server did not finish the handshake within "
                        + timeout.toMillis() + " ms", e);
            }
            if (e instanceof ImageException) {
                throw e;
            }
            throw new ImageException(uri.text(), -1, "cannot connect to the NBD server: " + e.getMessage(), e);
        }
    }

    ExportInfo info() {
        return info;
    }

    /**
     * Sends a request: its header and, for a write, the payload (remaining bytes of {@code payload}); a read's data
     * goes into {@code destination} (exactly {@code length} bytes, position 0). Waits while
     * {@link #MAX_IN_FLIGHT} requests are in flight.
     *
     * @throws IOException if the connection failed
     */
    Pending send(int type, int flags, long offset, long length, ByteBuffer payload, ByteBuffer destination)
            throws IOException {
        try {
            if (!slots.tryAcquire(timeoutNanos, TimeUnit.NANOSECONDS)) {
                throw fail(new ImageException(resource, "no reply from the NBD server within "
                        + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms"));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while waiting to send an NBD request");
        }
        Request request = new Request(flags, type, cookies.incrementAndGet(), offset, length);
        Pending p = new Pending(request, destination);
        pending.put(request.cookie(), p);
        IOException failed = failure;
        if (failed != null) {
            finish(p, failed);
            throw failed;
        }
        try {
            if (payload == null) {
                wire.write(request.encode());
            } else {
                wire.write(request.encode(), payload.duplicate());
            }
        } catch (IOException e) {
            IOException cause = fail(new ImageException(resource, -1, "the connection to the NBD server failed: "
                    + e.getMessage(), e));
            throw cause;
        }
        return p;
    }

    /**
     * Waits for the reply to {@code p}. @throws ImageException with the server's error, or the connection's failure
     */
    void await(Pending p) throws IOException {
        try {
            if (!p.await(timeoutNanos)) {
                fail(new ImageException(resource, "no reply from the NBD server within "
                        + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms"));
                p.await(Long.MAX_VALUE);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            // the reader may still write into the caller's buffer: the connection cannot be used any more
            fail(new java.io.InterruptedIOException("interrupted while waiting for the NBD server"));
            throw new java.io.InterruptedIOException("interrupted while waiting for the NBD server");
        }
        p.check(resource);
    }

    /** Sends one request and waits for its reply. */
    Pending call(int type, int flags, long offset, long length) throws IOException {
        Pending p = send(type, flags, offset, length, null, null);
        await(p);
        return p;
    }

    private void readReplies() {
        ReplyReader replies = new ReplyReader(wire, resource, info, pending);
        try {
            while (true) {
                Pending p = replies.next();
                if (p != null) {
                    finish(p, null);
                }
            }
        } catch (ImageException e) {
            fail(e);
        } catch (IOException | RuntimeException e) {
            fail(new ImageException(resource, -1, closed.get() ? "the NBD connection is closed"
                    : "the connection to the NBD server failed: " + e.getMessage(), e));
        }
    }

    private void finish(Pending p, IOException cause) {
        pending.remove(p.request.cookie(), p);
        if (p.complete(cause)) {
            slots.release();
        }
    }

    /**
     * Ends the connection because of {@code cause}: every request in flight and every later one fails with it. Waits
     * for the reader thread to stop, so that nothing writes into a caller's buffer afterwards.
     */
    private IOException fail(IOException cause) {
        synchronized (this) {
            if (failure == null) {
                failure = cause;
            }
        }
        wire.close();
        if (Thread.currentThread() != reader) {
            try {
                reader.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (Pending p : pending.values()) {
            finish(p, failure);
        }
        return failure;
    }

    /** Says goodbye ({@code NBD_CMD_DISC}) and closes, failing what is still in flight. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        if (failure == null) {
            try {
                wire.write(new Request(0, Nbd.CMD_DISC, cookies.incrementAndGet(), 0, 0).encode());
            } catch (IOException e) {
                // the server is gone already
            }
        }
        fail(new ImageException(resource, "the NBD connection is closed"));
    }
}
