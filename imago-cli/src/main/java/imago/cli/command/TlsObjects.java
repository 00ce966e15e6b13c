package imago.cli.command;

import imago.nbd.TlsCredentials;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * qemu's {@code --object tls-creds-x509,id=ID,dir=DIR,endpoint=server[,verify-peer=on|off]} and
 * {@code --tls-creds=ID}, as qemu-nbd takes them, with qemu-nbd's messages.
 */
final class TlsObjects {
    private TlsObjects() {
    }

    /**
     * The server credentials {@code tlsCreds} names among {@code objects}, or {@code null} without
     * {@code --tls-creds}.
     *
     * @throws CliException for a malformed or unknown object, or credentials that are not a server's
     * @throws IOException if the credential files cannot be read
     */
    static TlsCredentials serverCredentials(List<String> objects, String tlsCreds) throws IOException {
        Map<String, Map<String, String>> byId = new LinkedHashMap<>();
        for (String object : objects) {
            Map<String, String> props = parse(object);
            String type = props.remove("qom-type");
            if (!type.equals("tls-creds-x509")) {
                throw new CliException(null, "invalid object type: " + type);
            }
            String id = props.get("id");
            if (id == null) {
                throw new CliException(null, "Parameter 'id' is missing");
            }
            if (byId.putIfAbsent(id, props) != null) {
                throw new CliException(null, "attempt to add duplicate property '" + id + "' to object (type "
                        + "'container')");
            }
        }
        if (tlsCreds == null) {
            return null;
        }
        Map<String, String> props = byId.get(tlsCreds);
        if (props == null) {
            throw new CliException(null, "Failed to get TLS creds: No TLS credentials with id '" + tlsCreds + "'");
        }
        String endpoint = props.getOrDefault("endpoint", "client");
        if (!endpoint.equals("server") && !endpoint.equals("client")) {
            throw new CliException(null, "Parameter 'endpoint' does not accept value '" + endpoint + "'");
        }
        if (!endpoint.equals("server")) {
            throw new CliException(null, "Failed to get TLS creds: Expected TLS credentials for a server endpoint");
        }
        String dir = props.get("dir");
        if (dir == null) {
            throw new CliException(null, "Missing 'dir' property value");
        }
        boolean verifyPeer = switch (props.getOrDefault("verify-peer", "on")) {
            case "on", "yes", "true" -> true;
            case "off", "no", "false" -> false;
            default -> throw new CliException(null, "Parameter 'verify-peer' expects 'on' or 'off'");
        };
        try {
            return TlsCredentials.load(Path.of(dir), TlsCredentials.Endpoint.SERVER, verifyPeer);
        } catch (IOException e) {
            throw new CliException(null, e.getMessage());
        }
    }

    /** {@code TYPE,key=value,...} (qemu's {@code qom-type=TYPE} too), commas doubled to stand for themselves. */
    private static Map<String, String> parse(String object) {
        Map<String, String> props = new LinkedHashMap<>();
        StringBuilder part = new StringBuilder();
        java.util.List<String> parts = new java.util.ArrayList<>();
        for (int i = 0; i < object.length(); i++) {
            char c = object.charAt(i);
            if (c == ',' && i + 1 < object.length() && object.charAt(i + 1) == ',') {
                part.append(',');
                i++;
            } else if (c == ',') {
                parts.add(part.toString());
                part.setLength(0);
            } else {
                part.append(c);
            }
        }
        parts.add(part.toString());
        for (int i = 0; i < parts.size(); i++) {
            String p = parts.get(i);
            int eq = p.indexOf('=');
            if (i == 0 && eq < 0) {
                props.put("qom-type", p);
            } else if (eq < 0) {
                throw new CliException(null, "Expected '=' after parameter '" + p + "'");
            } else {
                props.put(p.substring(0, eq), p.substring(eq + 1));
            }
        }
        if (!props.containsKey("qom-type")) {
            throw new CliException(null, "Parameter 'qom-type' is missing");
        }
        return props;
    }
}
