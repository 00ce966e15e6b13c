package imago.nbd.internal;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Accepts clients on a listening socket, each served by a virtual thread of its own. At most
 * {@code maxConnections} are connected at once: the next one waits in the listen backlog, as with qemu-nbd. A
 * server that is not persistent stops when its last client leaves.
 */
public final class ServerCore implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("imago.nbd");

    private final Export export;
    private final int maxConnections;
    private final boolean persistent;
    private final Duration handshakeLimit;
    private final Semaphore slots;
    private final AtomicInteger active = new AtomicInteger();
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final CountDownLatch terminated = new CountDownLatch(1);
    private final ScheduledExecutorService timer;
    private ServerSocketChannel listener;

    /**
     * A server for {@code export}.
     *
     * @param maxConnections clients connected at once, at most (at least 1)
     * @param persistent whether to keep serving after the last client left
     * @param handshakeLimit how long a client may take to reach transmission
     */
    public ServerCore(Export export, int maxConnections, boolean persistent, Duration handshakeLimit) {
        if (maxConnections < 1) {
            throw new IllegalArgumentException("maxConnections must be at least 1: " + maxConnections);
        }
        this.export = export;
        this.maxConnections = maxConnections;
        this.persistent = persistent;
        this.handshakeLimit = handshakeLimit;
        this.slots = new Semaphore(maxConnections);
        this.timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("nbd-timer")
                .factory());
    }

    /** Starts accepting on {@code listener}, which this server closes when it stops. */
    public void start(ServerSocketChannel listener) {
        this.listener = listener;
        Thread.ofVirtual().name("nbd-accept").start(this::acceptLoop);
    }

    private void acceptLoop() {
        try {
            while (!closed.get()) {
                slots.acquire();
                SocketChannel channel;
                try {
                    channel = listener.accept();
                    if (channel.getRemoteAddress() instanceof InetSocketAddress) {
                        // replies are whole messages written at once: Nagle would hold small ones back for an ACK
                        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                    }
                } catch (IOException e) {
                    slots.release();
                    throw e;
                }
                active.incrementAndGet();
                Connection c = new Connection(channel, export);
                connections.add(c);
                if (closed.get()) {
                    c.close();
                }
                Thread.ofVirtual().name("nbd-client").start(() -> serve(c));
            }
        } catch (ClosedChannelException e) {
            LOG.log(Level.DEBUG, "listener closed");
        } catch (IOException e) {
            LOG.log(Level.WARNING, "accepting NBD clients failed: {0}", e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            close();
        }
    }

    private void serve(Connection c) {
        try {
            c.run(timer, handshakeLimit);
        } finally {
            connections.remove(c);
            slots.release();
            int left = active.decrementAndGet();
            if (left == 0 && !persistent) {
                close();
            }
            if (left == 0 && closed.get()) {
                terminated.countDown();
            }
        }
    }

    /** Clients connected now. */
    public int activeConnections() {
        return active.get();
    }

    /** The most clients connected at once. */
    public int maxConnections() {
        return maxConnections;
    }

    /** Waits until the server stopped and its last client is gone. @return whether it did within the time */
    public boolean awaitTermination(long time, TimeUnit unit) throws InterruptedException {
        return terminated.await(time, unit);
    }

    /** Stops accepting and hangs up on every client. Idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try {
            if (listener != null) {
                listener.close();
            }
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "closing the listener: {0}", e.toString());
        }
        for (Connection c : connections) {
            c.close();
        }
        timer.shutdownNow();
        if (active.get() == 0) {
            terminated.countDown();
        }
    }

    /** Whether the server stopped. */
    public boolean isClosed() {
        return closed.get();
    }
}
