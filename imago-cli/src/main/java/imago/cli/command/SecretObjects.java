package imago.cli.command;

import imago.api.Secrets;
import imago.cli.text.QemuOpts;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * qemu-img's {@code --object secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]}: a passphrase kept in the
 * session's {@link Secrets} under its id, for options that name it ({@code key-secret=ID}). Other objects
 * (TLS credentials) are left to the commands that use them; a value is never shown in a message.
 */
final class SecretObjects {
    private static final Set<String> KEYS = Set.of("qom-type", "id", "data", "file", "format");

    private SecretObjects() {
    }

    /** Whether {@code argument} is a secret object ({@code secret,...} or {@code qom-type=secret,...}). */
    static boolean isSecret(String argument) {
        try {
            return "secret".equals(QemuOpts.parse(List.of("qom-type=" + argument)).get("qom-type"));
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** Parses one {@code --object} argument into {@code secrets}. */
    static void add(Secrets secrets, String argument) {
        Map<String, String> o;
        try {
            o = QemuOpts.parse(List.of("qom-type=" + argument));
        } catch (IllegalArgumentException e) {
            throw new CliException(null, "Invalid --object: the option list does not parse");
        }
        String type = o.get("qom-type");
        if (!"secret".equals(type)) {
            throw new CliException(null, "Invalid --object: imago takes only secret objects, not '"
                    + (type == null ? "" : type) + "'");
        }
        for (String k : o.keySet()) {
            if (!KEYS.contains(k)) {
                throw new CliException(null, "Invalid parameter '" + k + "' for object secret"
                        + (k.equals("keyid") || k.equals("iv") ? " (encrypted secrets are not supported)" : ""));
            }
        }
        String id = o.get("id");
        if (id == null || id.isEmpty()) {
            throw new CliException(null, "Parameter 'id' is missing");
        }
        String data = o.get("data");
        String file = o.get("file");
        if ((data == null) == (file == null)) {
            throw new CliException(null, "Either 'data' or 'file' must be provided for secret '" + id + "'");
        }
        byte[] value;
        if (data != null) {
            value = data.getBytes(StandardCharsets.UTF_8);
        } else {
            try {
                value = Files.readAllBytes(Path.of(file));
            } catch (IOException e) {
                throw new CliException(null, "Unable to read " + file + ": " + e.getMessage());
            }
        }
        String format = o.getOrDefault("format", "raw");
        try {
            switch (format) {
                case "raw" -> secrets.put(id, value);
                case "base64" -> {
                    byte[] decoded;
                    try {
                        decoded = Base64.getDecoder().decode(new String(value, StandardCharsets.US_ASCII).strip());
                    } catch (IllegalArgumentException e) {
                        throw new CliException(null, "Invalid base64 data in secret '" + id + "'");
                    }
                    secrets.put(id, decoded);
                    Arrays.fill(decoded, (byte) 0);
                }
                default -> throw new CliException(null, "Invalid parameter 'format' for secret '" + id
                        + "': expected raw or base64");
            }
        } finally {
            Arrays.fill(value, (byte) 0);
        }
    }
}
