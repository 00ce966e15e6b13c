package imago.testkit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test certificates made with openssl, in qemu's {@code tls-creds-x509} directory layout: an authority, a server
 * certificate for {@code localhost} and {@code 127.0.0.1}, and a client certificate, all signed by the authority.
 * The server's key is written in PKCS#1 ({@code RSA PRIVATE KEY}, as older tools write it), the client's in
 * PKCS#8, so that both readers are exercised.
 *
 * @param server a directory with ca-cert.pem, server-cert.pem and server-key.pem
 * @param client a directory with ca-cert.pem, client-cert.pem and client-key.pem (also libnbd's layout)
 */
public record TlsFiles(Path server, Path client) {

    /** Makes the certificates under {@code dir} (a few hundred milliseconds). */
    public static TlsFiles create(Path dir) throws IOException {
        Qemu.tool("openssl");
        Path ca = dir.resolve("ca");
        Path server = dir.resolve("server");
        Path client = dir.resolve("client");
        Files.createDirectories(ca);
        Files.createDirectories(server);
        Files.createDirectories(client);
        Qemu.ok(ca, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
                "ca-cert.pem", "-days", "2", "-subj", "/CN=imago test CA");
        Files.writeString(ca.resolve("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "extendedKeyUsage=serverAuth\n");
        Files.writeString(ca.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        sign(ca, "server", "/CN=localhost");
        sign(ca, "client", "/CN=imago test client");
        Qemu.ok(ca, "openssl", "rsa", "-in", "server-key.pem", "-traditional", "-out", server.resolve("server-key.pem"));
        Files.copy(ca.resolve("server-cert.pem"), server.resolve("server-cert.pem"));
        Files.copy(ca.resolve("client-key.pem"), client.resolve("client-key.pem"));
        Files.copy(ca.resolve("client-cert.pem"), client.resolve("client-cert.pem"));
        Files.copy(ca.resolve("ca-cert.pem"), server.resolve("ca-cert.pem"));
        Files.copy(ca.resolve("ca-cert.pem"), client.resolve("ca-cert.pem"));
        return new TlsFiles(server, client);
    }

    private static void sign(Path ca, String who, String subject) {
        Qemu.ok(ca, "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + "-key.pem", "-out",
                who + ".csr", "-subj", subject);
        Qemu.ok(ca, "openssl", "x509", "-req", "-in", who + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", who + "-cert.pem", "-days", "2", "-extfile", who + ".ext");
    }
}
