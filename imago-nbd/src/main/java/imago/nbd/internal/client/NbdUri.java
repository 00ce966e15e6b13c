package imago.nbd.internal.client;

import imago.api.StorageLocation;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * An NBD location as the NBD URI specification (NetworkBlockDevice/nbd, doc/uri.md) and libnbd write it:
 * {@code nbd://HOST[:PORT]/EXPORT}, {@code nbd+unix:///EXPORT?socket=PATH}, and the same with {@code nbds} for
 * TLS. The export name is the path without its first slash, percent-decoded. Of the query parameters, {@code socket}
 * names the Unix socket, and for TLS, as in libnbd, {@code tls-certificates=DIR} names a directory of credentials
 * ({@code ca-cert.pem}, and {@code client-cert.pem} with {@code client-key.pem} when the server wants a client
 * certificate; without it the JDK's trusted authorities) and {@code tls-verify-peer=false} accepts any server
 * certificate; others are ignored, as the specification lets clients ignore them.
 *
 * <p>Only locations the user gives are parsed here: a name stored inside an image never reaches this class (the
 * storages resolve stored names, and this one resolves none).
 *
 * @param text the URI as given, for messages
 * @param address where the server listens (an unresolved TCP address, or a Unix socket)
 * @param export the export name, possibly empty
 * @param tls whether the scheme asks for TLS ({@code nbds})
 * @param certificates the {@code tls-certificates} directory, or {@code null}
 * @param verifyPeer whether the server's certificate is checked ({@code tls-verify-peer}, true by default)
 */
public record NbdUri(String text, SocketAddress address, String export, boolean tls, Path certificates,
        boolean verifyPeer) {
    /** The port NBD servers listen on by default. */
    public static final int DEFAULT_PORT = 10809;
    private static final int MAX_EXPORT = 4096;

    /** Validates the fields. */
    public NbdUri {
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(export, "export");
    }

    /** Whether {@code text} starts with one of the NBD schemes this client takes. */
    public static boolean isNbd(String text) {
        String lower = text.toLowerCase(Locale.ROOT);
        return lower.startsWith("nbd://") || lower.startsWith("nbds://") || lower.startsWith("nbd+unix://")
                || lower.startsWith("nbds+unix://");
    }

    /**
     * Parses a user's NBD URI.
     *
     * @throws IllegalArgumentException if it is not one, with what is wrong
     */
    public static NbdUri parse(String text) {
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("bad NBD URI '" + text + "': " + e.getReason());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        boolean tls = scheme.startsWith("nbds");
        boolean unix = scheme.endsWith("+unix");
        if (!scheme.equals("nbd") && !scheme.equals("nbds") && !scheme.equals("nbd+unix")
                && !scheme.equals("nbds+unix")) {
            throw new IllegalArgumentException("bad NBD URI '" + text + "': the scheme must be nbd, nbds, nbd+unix "
                    + "or nbds+unix");
        }
        if (uri.isOpaque()) {
            throw new IllegalArgumentException("bad NBD URI '" + text + "': expected " + scheme + "://");
        }
        String path = uri.getRawPath() == null ? "" : uri.getRawPath();
        String export = path.isEmpty() ? "" : decode(text, path.substring(1));
        if (export.length() > MAX_EXPORT) {
            throw new IllegalArgumentException("bad NBD URI '" + text + "': an export name longer than " + MAX_EXPORT);
        }
        String socket = query(text, uri.getRawQuery(), "socket");
        SocketAddress address;
        if (unix) {
            if (uri.getRawAuthority() != null && !uri.getRawAuthority().isEmpty()) {
                throw new IllegalArgumentException("bad NBD URI '" + text + "': " + scheme
                        + " takes no host (write " + scheme + ":///EXPORT?socket=PATH)");
            }
            if (socket == null || socket.isEmpty()) {
                throw new IllegalArgumentException("bad NBD URI '" + text + "': " + scheme
                        + " needs the socket=PATH query parameter");
            }
            address = UnixDomainSocketAddress.of(socket);
        } else {
            String host = uri.getHost();
            if (host == null || host.isEmpty()) {
                throw new IllegalArgumentException("bad NBD URI '" + text + "': no host");
            }
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            int port = uri.getPort() < 0 ? DEFAULT_PORT : uri.getPort();
            if (port > 65535) {
                throw new IllegalArgumentException("bad NBD URI '" + text + "': port " + port);
            }
            address = InetSocketAddress.createUnresolved(host, port);
        }
        String dir = query(text, uri.getRawQuery(), "tls-certificates");
        String verify = query(text, uri.getRawQuery(), "tls-verify-peer");
        boolean verifyPeer = verify == null || !List.of("false", "0", "no", "off").contains(verify.toLowerCase(
                Locale.ROOT));
        return new NbdUri(text, address, export, tls, dir == null ? null : Path.of(dir), verifyPeer);
    }

    /**
     * The export's name as qemu shows it ({@code nbd://HOST:PORT[/EXPORT]}, {@code nbd+unix://[/EXPORT]?socket=PATH}),
     * so that {@code info} prints what {@code qemu-img info} prints for the same URI.
     */
    public String canonical() {
        String scheme = tls ? "nbds" : "nbd";
        String path = export.isEmpty() ? "" : "/" + export;
        return switch (address) {
            case UnixDomainSocketAddress unix -> scheme + "+unix://" + path + "?socket=" + unix.getPath();
            case InetSocketAddress inet -> scheme + "://" + inet.getHostString() + ":" + inet.getPort() + path;
            default -> text;
        };
    }

    /** The storage location of this export: scheme {@code nbd}, the URI as given. */
    public StorageLocation location() {
        return new StorageLocation("nbd", text);
    }

    /** The value of the first query parameter {@code name}, percent-decoded, or {@code null}. */
    private static String query(String text, String rawQuery, String name) {
        if (rawQuery == null) {
            return null;
        }
        for (String pair : rawQuery.split("[&;]")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            if (decode(text, key).equals(name)) {
                return eq < 0 ? "" : decode(text, pair.substring(eq + 1));
            }
        }
        return null;
    }

    /** Percent-decodes UTF-8 ({@code +} stays a plus: this is a URI, not a form). */
    private static String decode(String text, String raw) {
        if (raw.indexOf('%') < 0) {
            return raw;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length());
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c != '%') {
                out.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
                continue;
            }
            if (i + 2 >= raw.length() || Character.digit(raw.charAt(i + 1), 16) < 0
                    || Character.digit(raw.charAt(i + 2), 16) < 0) {
                throw new IllegalArgumentException("bad NBD URI '" + text + "': a bad percent escape");
            }
            out.write(Character.digit(raw.charAt(i + 1), 16) * 16 + Character.digit(raw.charAt(i + 2), 16));
            i += 2;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return text;
    }
}
