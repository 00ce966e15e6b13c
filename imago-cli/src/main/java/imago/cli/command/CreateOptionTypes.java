package imago.cli.command;

import imago.api.UnknownFormatException;
import imago.api.spi.CreateChecks;
import imago.cli.text.Sizes;
import imago.probe.Imago;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * QEMU's option parser on the {@code -o} options of a new image ({@code create}, {@code convert}, {@code measure}):
 * it takes only the options the format and its file list in {@code -o help}, and reads each value as its type there
 * says (size, number, on/off), before anything else is checked or printed. The options imago takes beyond qemu-img's
 * (those the format's driver names but qemu-img's listing does not) pass, for the driver to check.
 */
final class CreateOptionTypes {
    private CreateOptionTypes() {
    }

    /**
     * Checks {@code options} (in the order given) as qemu-img's option parser does for a new image of {@code format}.
     * Formats without a listing are left to their driver.
     *
     * @throws IllegalArgumentException with QEMU's message (a size's hint on its next lines) for the first option
     *         that is unknown or whose value does not read as its type
     */
    static void check(String format, Map<String, String> options) {
        List<String> own = CreateOptionsHelp.lines("create-options-" + format + ".txt");
        if (own == null) {
            return;
        }
        Map<String, String> types = new HashMap<>();
        for (String line : CreateOptionsHelp.lines("create-options-file.txt")) {
            types.put(name(line), type(line));
        }
        for (String line : own) {
            types.put(name(line), type(line));
        }
        Set<String> driverOwn;
        try {
            driverOwn = Imago.describe(format).createOptions();
        } catch (UnknownFormatException e) {
            return; // the caller reports the format
        }
        for (Map.Entry<String, String> o : options.entrySet()) {
            String name = o.getKey();
            String type = types.get(name);
            if (type == null) {
                if (driverOwn.contains(name)) {
                    continue;
                }
                throw new IllegalArgumentException("Invalid parameter '" + name + "'");
            }
            checkValue(name, type, o.getValue());
        }
    }

    private static void checkValue(String name, String type, String value) {
        switch (type) {
            case "size" -> size(name, value);
            case "num" -> number(name, value);
            case "bool (on/off)" -> {
                if (!List.of("on", "yes", "true", "y", "off", "no", "false", "n").contains(value)) {
                    throw new IllegalArgumentException("Parameter '" + name + "' expects 'on' or 'off'");
                }
            }
            default -> {
                // a string: any value, for the format to judge
            }
        }
    }

    /** {@code qemu_strtosz}: a size of up to 2^64 - 1 bytes. */
    private static void size(String name, String value) {
        try {
            Sizes.parseUnsigned64(value);
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.TOO_LARGE) {
                throw new IllegalArgumentException("Value '" + value + "' is out of range for parameter '" + name
                        + "'");
            }
            throw new IllegalArgumentException("Parameter '" + name + "' expects a non-negative number below 2^64\n"
                    + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                    + "and exabytes, respectively.");
        }
    }

    /** {@code qemu_strtou64} in base 0: decimal, {@code 0x} hex or {@code 0} octal, signed, the whole text. */
    private static void number(String name, String value) {
        CreateChecks.number(name, value);
    }

    private static String name(String line) {
        String t = line.strip();
        return t.substring(0, t.indexOf('='));
    }

    private static String type(String line) {
        return line.substring(line.indexOf("=<") + 2, line.indexOf('>'));
    }
}
