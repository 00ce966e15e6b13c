package imago.nbd.internal;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Certificates and private keys in the PEM files that qemu's {@code tls-creds-x509} directories hold, as openssl and
 * GnuTLS's certtool write them: certificates, unencrypted PKCS#8 keys ({@code PRIVATE KEY}: RSA, EC, Ed25519) and
 * PKCS#1 RSA keys ({@code RSA PRIVATE KEY}, which older tools write).
 */
public final class Pem {
    private static final Pattern BLOCK = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----\\s*([A-Za-z0-9+/=\\s]*?)\\s*-----END \\1-----");
    /** DER of PKCS#8's AlgorithmIdentifier for rsaEncryption (OID 1.2.840.113549.1.1.1, NULL parameters). */
    private static final byte[] RSA_ALGORITHM = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86,
        (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    /** A bound on the files read: credentials are a few kilobytes. */
    private static final long MAX_FILE = 1 << 20;

    private Pem() {
    }

    /**
     * The certificates of {@code file}, in order.
     *
     * @throws IOException if it cannot be read, is too large or holds no certificate
     */
    public static List<X509Certificate> certificates(Path file) throws IOException {
        byte[] bytes = read(file);
        try {
            List<X509Certificate> out = new ArrayList<>();
            for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(bytes))) {
                out.add((X509Certificate) c);
            }
            if (out.isEmpty()) {
                throw new IOException(file + ": no certificate");
            }
            return out;
        } catch (CertificateException e) {
            throw new IOException(file + ": not a PEM certificate: " + e.getMessage(), e);
        }
    }

    /**
     * The first private key of {@code file}.
     *
     * @throws IOException if it cannot be read or holds no key of a kind this class reads (an encrypted key, an
     *         SEC1 EC key: convert those with {@code openssl pkcs8 -topk8 -nocrypt})
     */
    public static PrivateKey privateKey(Path file) throws IOException {
        Matcher m = BLOCK.matcher(new String(read(file), StandardCharsets.US_ASCII));
        while (m.find()) {
            String type = m.group(1);
            byte[] der;
            try {
                der = Base64.getMimeDecoder().decode(m.group(2));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": bad base64 in the " + type + " block");
            }
            switch (type) {
                case "PRIVATE KEY" -> {
                    return pkcs8(file, der);
                }
                case "RSA PRIVATE KEY" -> {
                    return pkcs8(file, sequence(concat(new byte[] {0x02, 0x01, 0x00}, RSA_ALGORITHM,
                            tagged(0x04, der))));
                }
                case "ENCRYPTED PRIVATE KEY" ->
                    throw new IOException(file + ": an encrypted private key (not supported; decrypt it with "
                            + "openssl pkcs8 -nocrypt)");
                case "EC PRIVATE KEY" ->
                    throw new IOException(file + ": an SEC1 EC key (not supported; convert it with openssl pkcs8 "
                            + "-topk8 -nocrypt)");
                default -> {
                    // parameters, certificates: look further
                }
            }
        }
        throw new IOException(file + ": no PEM private key");
    }

    private static PrivateKey pkcs8(Path file, byte[] der) throws IOException {
        for (String algorithm : new String[] {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                // another algorithm's key
            }
        }
        throw new IOException(file + ": a private key of an algorithm this JDK does not know");
    }

    private static byte[] read(Path file) throws IOException {
        if (!Files.isReadable(file)) {
            throw new IOException("Unable to access credentials " + file + ": " + (Files.exists(file)
                    ? "Permission denied" : "No such file or directory"));
        }
        if (Files.size(file) > MAX_FILE) {
            throw new IOException(file + ": larger than " + MAX_FILE + " bytes");
        }
        return Files.readAllBytes(file);
    }

    private static byte[] sequence(byte[] content) {
        return tagged(0x30, content);
    }

    /** A DER element: tag, definite length, content. */
    private static byte[] tagged(int tag, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
        out.write(tag);
        int n = content.length;
        if (n < 0x80) {
            out.write(n);
        } else {
            int bytes = (32 - Integer.numberOfLeadingZeros(n) + 7) / 8;
            out.write(0x80 | bytes);
            for (int i = bytes - 1; i >= 0; i--) {
                out.write(n >>> (8 * i));
            }
        }
        out.writeBytes(content);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
