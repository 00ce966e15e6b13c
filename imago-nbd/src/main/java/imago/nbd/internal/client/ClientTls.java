package imago.nbd.internal.client;

import imago.api.ImageException;
import imago.nbd.TlsCredentials;
import imago.nbd.internal.TlsChannel;
import imago.nbd.internal.TrustingAll;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ByteChannel;
import java.security.GeneralSecurityException;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;

/**
 * The client's side of {@code NBD_OPT_STARTTLS}: credentials from the URI's {@code tls-certificates} directory (or the
 * JDK's trusted authorities), the server's certificate checked, and over TCP its name too, unless
 * {@code tls-verify-peer=false}.
 */
final class ClientTls {
    private final NbdUri uri;
    private final SSLContext context;

    private ClientTls(NbdUri uri, SSLContext context) {
        this.uri = uri;
        this.context = context;
    }

    /** The TLS settings {@code uri} asks for. @throws IOException if its credentials cannot be loaded */
    static ClientTls of(NbdUri uri) throws IOException {
        try {
            SSLContext context;
            if (uri.certificates() != null) {
                context = TlsCredentials.load(uri.certificates(), TlsCredentials.Endpoint.CLIENT, uri.verifyPeer())
                        .context();
            } else if (uri.verifyPeer()) {
                context = SSLContext.getDefault();
            } else {
                context = SSLContext.getInstance("TLS");
                context.init(null, new TrustManager[] {new TrustingAll()}, null);
            }
            return new ClientTls(uri, context);
        } catch (GeneralSecurityException e) {
            throw new ImageException(uri.text(), -1, "cannot set up TLS: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new ImageException(uri.text(), -1, e.getMessage(), e);
        }
    }

    /**
     * Runs the TLS handshake over {@code channel}.
     *
     * @throws ImageException if the server's certificate or the handshake is refused
     */
    TlsChannel handshake(ByteChannel channel) throws IOException {
        SSLEngine engine;
        if (uri.address() instanceof InetSocketAddress inet) {
            engine = context.createSSLEngine(inet.getHostString(), inet.getPort());
            if (uri.verifyPeer()) {
                SSLParameters p = engine.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                engine.setSSLParameters(p);
            }
        } else {
            engine = context.createSSLEngine();
        }
        engine.setUseClientMode(true);
        try {
            return TlsChannel.handshake(channel, engine);
        } catch (SSLException e) {
            throw new ImageException(uri.text(), -1, "the TLS handshake failed: " + e.getMessage(), e);
        }
    }
}
