package imago.nbd;

import imago.api.Image;
import imago.nbd.internal.Export;
import imago.nbd.internal.ServerCore;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Serves one open {@link Image} as an NBD export, as {@code qemu-nbd} does: the fixed newstyle handshake,
 * structured replies (sparse reads), block status with the {@code base:allocation} and
 * {@code qemu:allocation-depth} meta contexts, and every command of the protocol but resize. Each client is
 * served by a virtual thread, and its requests are served concurrently.
 *
 * <pre>{@code
 * try (Image image = Imago.opener().path(disk).writable(true).open();
 *      NbdServer server = NbdServer.builder(image).exportName("disk").maxConnections(4)
 *              .bind(UnixDomainSocketAddress.of("/run/disk.sock"))) {
 *     server.awaitTermination();
 * }
 * }</pre>
 *
 * <p>The server does not close the image: close the server first, then the image. It binds only the address it
 * is given, bounds what every client may make it hold (option and request sizes, requests in flight, clients
 * connected, the time to finish the handshake) and survives clients that break the protocol: such a client is
 * answered with the error the specification asks for, or disconnected, and the others go on.
 */
public final class NbdServer implements AutoCloseable {
    /** The port NBD servers listen on by default. */
    public static final int DEFAULT_PORT = 10809;

    private final ServerCore core;
    private final SocketAddress address;
    private final Path socketFile;

    private NbdServer(ServerCore core, SocketAddress address, Path socketFile) {
        this.core = core;
        this.address = address;
        this.socketFile = socketFile;
    }

    /** A builder for a server of {@code image}, which must stay open while the server runs. */
    public static Builder builder(Image image) {
        return new Builder(image);
    }

    /** The address the server listens on (with the port chosen when 0 was asked for). */
    public SocketAddress localAddress() {
        return address;
    }

    /** Clients connected now. */
    public int activeConnections() {
        return core.activeConnections();
    }

    /** Whether the server stopped (closed, or its last client left and it is not persistent). */
    public boolean isClosed() {
        return core.isClosed();
    }

    /**
     * Waits until the server stops: it is closed, or it is not persistent and its last client left.
     *
     * @throws InterruptedException if interrupted while waiting
     */
    public void awaitTermination() throws InterruptedException {
        while (!core.awaitTermination(1, TimeUnit.DAYS)) {
            // keep waiting
        }
        deleteSocketFile();
    }

    /**
     * Waits at most {@code timeout} until the server stops. @return whether it stopped
     *
     * @throws InterruptedException if interrupted while waiting
     */
    public boolean awaitTermination(Duration timeout) throws InterruptedException {
        boolean done = core.awaitTermination(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (done) {
            deleteSocketFile();
        }
        return done;
    }

    /** Stops accepting, hangs up on every client and removes a Unix socket it created. Idempotent. */
    @Override
    public void close() {
        core.close();
        deleteSocketFile();
    }

    private void deleteSocketFile() {
        if (socketFile != null) {
            try {
                Files.deleteIfExists(socketFile);
            } catch (IOException e) {
                // left behind: the next bind removes a stale socket
            }
        }
    }

    /** Settings of a server; {@link #bind} or {@link #start} starts it. Not thread-safe. */
    public static final class Builder {
        private final Image image;
        private String exportName = "";
        private String description;
        private Boolean readOnly;
        private int maxConnections = 1;
        private Boolean multiConn;
        private boolean persistent = true;
        private boolean unmap;
        private DetectZeroes detectZeroes = DetectZeroes.OFF;
        private boolean allocationDepth;
        private final List<String> bitmaps = new ArrayList<>();
        private Duration handshakeLimit = Duration.ofSeconds(10);
        private TlsCredentials tls;

        private Builder(Image image) {
            this.image = Objects.requireNonNull(image, "image");
        }

        /** The export's name (default {@code ""}, the default export). */
        public Builder exportName(String name) {
            this.exportName = Objects.requireNonNull(name, "name");
            return this;
        }

        /** A description clients may ask for ({@code NBD_INFO_DESCRIPTION}), or {@code null} for none. */
        public Builder description(String text) {
            this.description = text;
            return this;
        }

        /** Whether clients may not write (default: whether the image is read-only). */
        public Builder readOnly(boolean readOnly) {
            this.readOnly = readOnly;
            return this;
        }

        /** Clients connected at once, at most (default 1, as qemu-nbd's {@code --shared}). */
        public Builder maxConnections(int max) {
            if (max < 1) {
                throw new IllegalArgumentException("maxConnections must be at least 1: " + max);
            }
            this.maxConnections = max;
            return this;
        }

        /**
         * Whether to tell clients that several connections see each other's writes once flushed
         * ({@code NBD_FLAG_CAN_MULTI_CONN}); true by default when more than one client may connect, as with
         * qemu-nbd. That holds here: every connection writes to the one image, whose flush covers all writes.
         */
        public Builder multiConn(boolean advertise) {
            this.multiConn = advertise;
            return this;
        }

        /** Whether to keep serving after the last client left (default true; qemu-nbd's default is false). */
        public Builder persistent(boolean persistent) {
            this.persistent = persistent;
            return this;
        }

        /** Whether trims (and zero writes that allow it) free space ({@code --discard=unmap}); default false. */
        public Builder unmap(boolean unmap) {
            this.unmap = unmap;
            return this;
        }

        /** What writes of all-zero data become (default {@link DetectZeroes#OFF}). */
        public Builder detectZeroes(DetectZeroes mode) {
            this.detectZeroes = Objects.requireNonNull(mode, "mode");
            return this;
        }

        /** Whether to offer the {@code qemu:allocation-depth} meta context (default false). */
        public Builder allocationDepth(boolean offer) {
            this.allocationDepth = offer;
            return this;
        }

        /**
         * Offers the image's persistent dirty bitmap {@code name} as the meta context
         * {@code qemu:dirty-bitmap:NAME} (repeatable), as qemu-nbd's {@code -B}: clients see its dirty runs,
         * including those of writes made through the server.
         *
         * @throws IllegalArgumentException if the image has no such bitmap
         * @throws IOException if the bitmap is inconsistent (an {@link imago.api.UnsupportedFeatureException}) or
         *         cannot be read
         */
        public Builder bitmap(String name) throws IOException {
            if (!image.dirtyBitmaps().contains(name)) {
                throw new IllegalArgumentException("Bitmap '" + name + "' is not found");
            }
            if (image.size() > 0) {
                image.dirtyRun(name, 0, 1); // refuses an inconsistent bitmap now rather than on every query
            }
            if (!bitmaps.contains(name)) {
                bitmaps.add(name);
            }
            return this;
        }

        /**
         * Serves over TLS only ({@code NBD_OPT_STARTTLS}), with these server credentials, as qemu-nbd with
         * {@code --tls-creds}: a client must start TLS before any other option, and is refused with
         * {@code NBD_REP_ERR_TLS_REQD} otherwise. {@code null} (the default) serves without TLS.
         *
         * @throws IllegalArgumentException if the credentials are not for a server
         */
        public Builder tls(TlsCredentials credentials) {
            if (credentials != null && credentials.endpoint() != TlsCredentials.Endpoint.SERVER) {
                throw new IllegalArgumentException("Expected TLS credentials for a server endpoint");
            }
            this.tls = credentials;
            return this;
        }

        /** How long a client may take from connecting to the transmission phase (default 10 s). */
        public Builder handshakeLimit(Duration limit) {
            if (limit.isNegative() || limit.isZero()) {
                throw new IllegalArgumentException("the handshake limit must be positive: " + limit);
            }
            this.handshakeLimit = limit;
            return this;
        }

        /**
         * Binds {@code address} (an {@link InetSocketAddress}, port 0 for any free one, or a
         * {@link UnixDomainSocketAddress}, replacing a stale socket file) and starts serving.
         *
         * @throws IOException if the address cannot be bound
         * @throws IllegalArgumentException if the settings contradict each other or the image
         */
        public NbdServer bind(SocketAddress address) throws IOException {
            Export export = export();
            ServerSocketChannel listener;
            Path socketFile = null;
            SocketAddress bindTo = address;
            if (address instanceof UnixDomainSocketAddress unix) {
                socketFile = unix.getPath();
                removeStaleSocket(socketFile);
                // bound under a temporary name and renamed once listening, so that a client never finds the
                // socket before it accepts connections (a script may wait for the file, then connect)
                Path name = socketFile.getFileName();
                bindTo = UnixDomainSocketAddress.of(socketFile.resolveSibling("." + name + "~"));
                removeStaleSocket(((UnixDomainSocketAddress) bindTo).getPath());
                listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            } else if (address instanceof InetSocketAddress inet) {
                listener = ServerSocketChannel.open(inet.getAddress() instanceof java.net.Inet6Address
                        ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET);
                listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            } else {
                throw new IllegalArgumentException("not a TCP or Unix socket address: " + address);
            }
            try {
                listener.bind(bindTo, 64);
                if (socketFile != null) {
                    Files.move(((UnixDomainSocketAddress) bindTo).getPath(), socketFile,
                            StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException | RuntimeException e) {
                listener.close();
                if (socketFile != null) {
                    Files.deleteIfExists(((UnixDomainSocketAddress) bindTo).getPath());
                }
                throw e;
            }
            return start(export, listener, address, socketFile);
        }

        /**
         * Starts serving on a channel already bound (which the server closes when it stops).
         *
         * @throws IOException if the channel's address cannot be read
         * @throws IllegalArgumentException if the settings contradict each other or the image
         */
        public NbdServer start(ServerSocketChannel listener) throws IOException {
            return start(export(), listener, listener.getLocalAddress(), null);
        }

        private NbdServer start(Export export, ServerSocketChannel listener, SocketAddress address, Path socketFile)
                throws IOException {
            ServerCore core = new ServerCore(export, maxConnections, persistent, handshakeLimit);
            NbdServer server = new NbdServer(core, address instanceof InetSocketAddress
                    ? listener.getLocalAddress() : address, socketFile);
            core.start(listener);
            return server;
        }

        private Export export() {
            boolean ro = readOnly != null ? readOnly : image.readOnly();
            if (!ro && image.readOnly()) {
                throw new IllegalArgumentException("a read-only image cannot be exported writable");
            }
            if (detectZeroes == DetectZeroes.UNMAP && !unmap) {
                throw new IllegalArgumentException("setting detect-zeroes to unmap is not allowed without setting "
                        + "discard operation to unmap");
            }
            boolean multi = multiConn != null ? multiConn : maxConnections > 1;
            return new Export(image, exportName, description, ro, multi, unmap, detectZeroes, allocationDepth,
                    bitmaps, tls);
        }

        private static void removeStaleSocket(Path path) throws IOException {
            if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
                return;
            }
            Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            final int typeMask = 0170000;
            final int socket = 0140000;
            if (mode instanceof Integer m && (m & typeMask) == socket) {
                Files.delete(path);
            }
        }
    }
}
