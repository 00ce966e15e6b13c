package imago.cli.command;

import imago.api.UnknownFormatException;
import imago.probe.Imago;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code -o help} for {@code create} and {@code convert}: the options a new image of a format takes, listed as
 * qemu-img 7.2 lists them (sorted by name, {@code name=<type>} then a description). Without a file name, the
 * format's own; with one, merged with those of the file that holds it ({@code extent_size_hint}, {@code nocow},
 * {@code preallocation}, {@code size}). The listings are resources beside this class, one per format.
 */
final class CreateOptionsHelp {

    private CreateOptionsHelp() {
    }

    /**
     * Prints the listing for {@code format}, and for a file when {@code file} is given.
     *
     * @throws CliException if no installed driver has the format, or it cannot create images
     */
    static void print(Session session, String format, String file) {
        boolean readOnly;
        try {
            readOnly = Imago.describe(format).readOnly();
        } catch (UnknownFormatException e) {
            throw new CliException(null, "Unknown file format '" + format + "'");
        }
        List<String> own = lines("create-options-" + format + ".txt");
        if (own == null || readOnly) {
            throw new CliException(null, "Format driver '" + format + "' does not support image creation");
        }
        StringBuilder sb = new StringBuilder();
        if (file == null) {
            sb.append("Supported ").append(format).append(" options:\n");
            own.forEach(l -> sb.append(l).append('\n'));
            sb.append("\nThe protocol level may support further options.\n"
                    + "Specify the target filename to include those options.\n");
        } else {
            // the format's line wins where both have an option (qcow2's preallocation has more modes)
            Map<String, String> merged = new TreeMap<>();
            for (String l : lines("create-options-file.txt")) {
                merged.put(name(l), l);
            }
            for (String l : own) {
                merged.put(name(l), l);
            }
            sb.append("Supported options:\n");
            merged.values().forEach(l -> sb.append(l).append('\n'));
        }
        session.out().print(sb);
    }

    private static String name(String line) {
        String t = line.strip();
        return t.substring(0, t.indexOf('='));
    }

    /** The lines of a listing beside this class, without empty ones; {@code null} if there is none. */
    static List<String> lines(String resource) {
        try (InputStream in = CreateOptionsHelp.class.getResourceAsStream(resource)) {
            if (in == null) {
                return null;
            }
            return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).lines()
                    .filter(l -> !l.isEmpty()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
