package imago.api.spi;

import imago.api.CreateOptions;
import java.util.List;
import java.util.Map;

/**
 * The checks of {@link CreateOptions} that a format's {@link FormatDriver#create create} makes before it writes
 * anything, with qemu-img's messages: only the format's own options, no backing file for a format without one, a
 * size, and option values that are on/off switches or one of a few words. Each failure is an
 * {@link IllegalArgumentException}, a caller's mistake.
 */
public final class CreateChecks {
    private CreateChecks() {
    }

    /**
     * Refuses a format option not in {@code known}.
     *
     * @param format the format's name, for the message
     * @param known the format's create options, in the order the message lists them
     * @throws IllegalArgumentException naming the first unknown option, the format and the known ones
     */
    public static void knownOptionsOnly(CreateOptions options, String format, List<String> known) {
        for (String key : options.formatOptions().keySet()) {
            if (!known.contains(key)) {
                throw new IllegalArgumentException("Invalid parameter '" + key + "' for format " + format + " (known: "
                        + String.join(", ", known) + ")");
            }
        }
    }

    /**
     * Refuses a backing file, for a format that has none.
     *
     * @throws IllegalArgumentException if {@code options} name one
     */
    public static void noBackingFile(CreateOptions options, String format) {
        if (options.backingFile().isPresent()) {
            throw new IllegalArgumentException("Backing file not supported for file format '" + format + "'");
        }
    }

    /**
     * The size the new image is asked to have.
     *
     * @throws IllegalArgumentException if {@code options} give none
     */
    public static long size(CreateOptions options) {
        return options.size().orElseThrow(() -> new IllegalArgumentException("Image creation needs a size parameter"));
    }

    /**
     * An on/off option as qemu-img reads it ({@code on}, {@code yes}, {@code true}, {@code y} or {@code off},
     * {@code no}, {@code false}, {@code n}), or {@code absent} when it is not given.
     *
     * @throws IllegalArgumentException for any other value
     */
    public static boolean onOff(Map<String, String> options, String key, boolean absent) {
        String value = options.get(key);
        if (value == null) {
            return absent;
        }
        return switch (value) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + key + "' expects 'on' or 'off'");
        };
    }

    /**
     * An option that takes one of a few words: its value, or {@code absent} when it is not given.
     *
     * @param words the values it takes besides {@code absent}
     * @throws IllegalArgumentException for any other value
     */
    public static String oneOf(Map<String, String> options, String key, String absent, String... words) {
        String value = options.getOrDefault(key, absent);
        if (!value.equals(absent) && !List.of(words).contains(value)) {
            throw new IllegalArgumentException("Parameter '" + key + "' does not accept value '" + value + "'");
        }
        return value;
    }
}
