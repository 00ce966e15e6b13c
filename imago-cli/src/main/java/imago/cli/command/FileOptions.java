package imago.cli.command;

import imago.cli.text.Sizes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The create options of the file that holds a new image, which qemu-img accepts for every format:
 * {@code nocow} (btrfs' no-copy-on-write attribute) and {@code extent_size_hint} (XFS' extent size). imago checks
 * them as qemu-img does and shows them in the "Formatting" line, but sets neither attribute on the file.
 *
 * @param nocow the {@code nocow} value as given, or {@code null}
 * @param extentSizeHint the {@code extent_size_hint} in bytes, or -1
 */
record FileOptions(String nocow, long extentSizeHint) {
    /** QEMU's largest extent size hint: XFS keeps it in 32 bits. */
    private static final long MAX_EXTENT_SIZE_HINT = 0xFFFF_FFFFL;

    /**
     * Takes the file options out of {@code opts}, checked.
     *
     * @throws CliException with qemu-img's message for a value it refuses
     */
    static FileOptions take(Map<String, String> opts, String file) {
        String nocow = opts.remove("nocow");
        if (nocow != null && !List.of("on", "off", "yes", "no", "true", "false", "y", "n").contains(nocow)) {
            throw new CliException(file, "Parameter 'nocow' expects 'on' or 'off'");
        }
        String hint = opts.remove("extent_size_hint");
        long bytes = -1;
        if (hint != null) {
            try {
                bytes = Sizes.parse(hint);
            } catch (Sizes.SizeException e) {
                throw new CliException(file, "Parameter 'extent_size_hint' expects a non-negative number below 2^64\n"
                        + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                        + "and exabytes, respectively.");
            }
        }
        return new FileOptions(nocow, bytes);
    }

    /** The options as the "Formatting" line ends with them ({@code nocow=on extent_size_hint=N}), or nothing. */
    List<String> formatting() {
        List<String> parts = new ArrayList<>();
        if (nocow != null) {
            parts.add("nocow=" + nocow);
        }
        if (extentSizeHint >= 0) {
            parts.add("extent_size_hint=" + extentSizeHint);
        }
        return parts;
    }

    /**
     * Refuses a hint QEMU cannot set (it does so when it creates the file, after the "Formatting" line).
     *
     * @throws CliException if the hint is too large
     */
    void check(String file) {
        if (extentSizeHint > MAX_EXTENT_SIZE_HINT) {
            throw new CliException(file, "Extent size hint is too large");
        }
    }
}
