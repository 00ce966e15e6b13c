package imago.nbd;

import imago.nbd.internal.Pem;
import imago.nbd.internal.TrustingAll;
import imago.nbd.internal.UnnamedIssuers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * X.509 credentials for NBD over TLS ({@code NBD_OPT_STARTTLS}), as qemu's {@code tls-creds-x509} object keeps them
 * in a directory: {@code ca-cert.pem} (the authority peers' certificates must chain to), and
 * {@code server-cert.pem} with {@code server-key.pem} for a server, or {@code client-cert.pem} with
 * {@code client-key.pem} (optional) for a client. Keys are unencrypted PKCS#8 or PKCS#1 RSA PEM files.
 *
 * <pre>{@code
 * TlsCredentials tls = TlsCredentials.load(Path.of("/etc/pki/qemu"), TlsCredentials.Endpoint.SERVER, true);
 * NbdServer.builder(image).tls(tls).bind(address);
 * }</pre>
 */
public final class TlsCredentials {
    /** Which side of a connection the credentials are for. */
    public enum Endpoint {
        /** A server: it presents server-cert.pem. */
        SERVER,
        /** A client: it presents client-cert.pem, when there is one. */
        CLIENT
    }

    private final SSLContext context;
    private final Endpoint endpoint;
    private final boolean verifyPeer;

    private TlsCredentials(SSLContext context, Endpoint endpoint, boolean verifyPeer) {
        this.context = context;
        this.endpoint = endpoint;
        this.verifyPeer = verifyPeer;
    }

    /**
     * Credentials from an {@link SSLContext} the application made (its key and trust managers).
     *
     * @param verifyPeer for a server, whether clients must present a certificate its trust managers accept
     */
    public static TlsCredentials of(SSLContext context, Endpoint endpoint, boolean verifyPeer) {
        return new TlsCredentials(Objects.requireNonNull(context, "context"), Objects.requireNonNull(endpoint,
                "endpoint"), verifyPeer);
    }

    /**
     * Loads the credentials in qemu's directory layout.
     *
     * @param verifyPeer whether the peer must present a certificate that chains to ca-cert.pem (qemu's
     *        {@code verify-peer}, on by default there: a server then requires client certificates; a client that
     *        does not verify accepts any server certificate and needs no ca-cert.pem)
     * @throws IOException if a file is missing or not what it should be, naming it
     */
    public static TlsCredentials load(Path dir, Endpoint endpoint, boolean verifyPeer) throws IOException {
        String side = endpoint == Endpoint.SERVER ? "server" : "client";
        Path certFile = dir.resolve(side + "-cert.pem");
        Path keyFile = dir.resolve(side + "-key.pem");
        Path caFile = dir.resolve("ca-cert.pem");
        try {
            // the authority first, as qemu reads it first (and names it first when it is missing)
            List<X509Certificate> authorities = endpoint == Endpoint.CLIENT && !verifyPeer ? List.of()
                    : Pem.certificates(caFile);
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            boolean hasCert = endpoint == Endpoint.SERVER || Files.exists(certFile);
            if (hasCert) {
                List<X509Certificate> chain = Pem.certificates(certFile);
                keys.setKeyEntry("key", Pem.privateKey(keyFile), new char[0],
                        chain.toArray(new X509Certificate[0]));
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, new char[0]);
            TrustManager[] trust;
            if (endpoint == Endpoint.CLIENT && !verifyPeer) {
                trust = new TrustManager[] {new TrustingAll()};
            } else {
                KeyStore trusted = KeyStore.getInstance("PKCS12");
                trusted.load(null, null);
                int i = 0;
                for (X509Certificate ca : authorities) {
                    trusted.setCertificateEntry("ca" + i++, ca);
                }
                TrustManagerFactory tmf = TrustManagerFactory.getInstance(
                        TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(trusted);
                trust = tmf.getTrustManagers();
                if (endpoint == Endpoint.SERVER) {
                    for (int t = 0; t < trust.length; t++) {
                        if (trust[t] instanceof X509ExtendedTrustManager x) {
                            trust[t] = new UnnamedIssuers(x);
                        }
                    }
                }
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), trust, null);
            return new TlsCredentials(context, endpoint, verifyPeer);
        } catch (GeneralSecurityException e) {
            throw new IOException(dir + ": cannot use the TLS credentials: " + e.getMessage(), e);
        }
    }

    /** The context TLS connections are made with. */
    public SSLContext context() {
        return context;
    }

    /** Which side these credentials are for. */
    public Endpoint endpoint() {
        return endpoint;
    }

    /** Whether the peer's certificate is required and checked. */
    public boolean verifyPeer() {
        return verifyPeer;
    }
}
