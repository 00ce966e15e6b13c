package imago.api.spi;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import java.util.List;
import java.util.Map;

/**
 * The checks of {@link CreateOptions} that a format's {@link FormatDriver#create create} makes before it writes
 * anything, with qemu-img's messages: only the format's own options, no backing file for a format without one, a
 * size, and option values that are on/off switches or one of a few words. Each failure is an
 * {@link IllegalArgumentException}, a caller's mistake.
 */
public final class CreateChecks {
    /** The suffixes of {@link #sizeOption}, each 1024 times the one before it. */
    private static final String SIZE_SUFFIXES = "bkmgtpe";

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
     * Refuses the preallocation modes that qemu-img 7.2 refuses for a format that does not preallocate itself (vpc,
     * vhdx, qed, qcow): it hands the mode to the file below, which refuses {@code metadata}; {@code falloc} and
     * {@code full} pass, and leave the file as {@code off} does (the format writes its file anew).
     *
     * @throws IllegalArgumentException for {@code metadata}, with qemu-img's message
     */
    public static void fileLayerPreallocation(CreateOptions options) {
        if (options.preallocation() == Preallocation.METADATA) {
            throw new IllegalArgumentException(unsupportedPreallocation(Preallocation.METADATA));
        }
    }

    /** qemu-img's message for a preallocation mode a format cannot make: {@code Unsupported preallocation mode: MODE}. */
    public static String unsupportedPreallocation(Preallocation mode) {
        return "Unsupported preallocation mode: " + mode.qemuName();
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
     * A size option as the formats read it: a whole number of bytes, with white space around it, or a whole number
     * with a binary suffix in either case ({@code b} for bytes, then {@code k}, {@code M}, {@code G}, {@code T},
     * {@code P}, {@code E}) up to {@code largestSuffix}. No fractions and no hex: qemu's own parser takes them, and the
     * command line checks {@code -o} values with it before a format sees them, so these rules meet API callers only.
     * The formats differ in the suffixes and the largest value they take and in their message, so those are
     * parameters.
     *
     * @param key the option's name, for the message
     * @param value the option's text
     * @param largestSuffix the largest suffix taken, lower case: {@code 'g'}, {@code 't'} or {@code 'e'}
     * @param max the largest size taken, in bytes
     * @param quoteValue whether the message ends with the value given ({@code , got 'VALUE'})
     * @return the size in bytes
     * @throws IllegalArgumentException if the text is no such size or the size exceeds {@code max}:
     *         {@code Parameter 'KEY' expects a size}, and {@code , got 'VALUE'} if {@code quoteValue}
     */
    public static long sizeOption(String key, String value, char largestSuffix, long max, boolean quoteValue) {
        int largest = SIZE_SUFFIXES.indexOf(largestSuffix);
        if (largest < 0) {
            throw new IllegalArgumentException("No size suffix: " + largestSuffix);
        }
        String suffixes = SIZE_SUFFIXES.substring(0, largest + 1);
        String s = value.trim();
        int shift = 0;
        if (!s.isEmpty()) {
            int unit = suffixes.indexOf(Character.toLowerCase(s.charAt(s.length() - 1)));
            if (unit >= 0) {
                shift = 10 * unit;
                s = s.substring(0, s.length() - 1);
            }
        }
        try {
            long n = Long.parseLong(s);
            if (n < 0 || n > max >> shift) {
                throw new NumberFormatException();
            }
            return n << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a size"
                    + (quoteValue ? ", got '" + value + "'" : ""), e);
        }
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

    /**
     * A number option as qemu's option parser reads it ({@code qemu_strtou64} in base 0: decimal, {@code 0x} hex or
     * {@code 0} octal, an optional sign, nothing after the digits): {@code 0x10} is 16, and {@code -1} wraps to
     * 2<sup>64</sup>-1, returned as the {@code long} of the same bits ({@code -1}), which qemu-img prints signed.
     *
     * @throws IllegalArgumentException if the text is no such number or exceeds 64 bits, with qemu-img's message
     */
    public static long number(String key, String value) {
        int i = 0;
        int n = value.length();
        while (i < n && Character.isWhitespace(value.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < n && (value.charAt(i) == '+' || value.charAt(i) == '-')) {
            negative = value.charAt(i) == '-';
            i++;
        }
        int radix = 10;
        if ((value.startsWith("0x", i) || value.startsWith("0X", i)) && i + 2 < n
                && Character.digit(value.charAt(i + 2), 16) >= 0) {
            radix = 16;
            i += 2;
        } else if (value.startsWith("0", i)) {
            radix = 8;
        }
        String digits = value.substring(i);
        int base = radix;
        if (digits.isEmpty() || !digits.chars().allMatch(c -> Character.digit(c, base) >= 0)) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a number");
        }
        long magnitude;
        try {
            magnitude = Long.parseUnsignedLong(digits, radix);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Value '" + value + "' is too large for parameter '" + key + "'", e);
        }
        return negative ? -magnitude : magnitude;
    }

    /**
     * The encryption format that qcow's and qcow2's {@code encrypt.format} option, or its deprecated alias
     * {@code encryption}, asks for: {@code encryption=on} is {@code aes}, {@code off} none; any other word of the
     * alias is taken as a format's name, as qemu-img takes it, for the caller to refuse ({@code Parameter 'format'
     * does not accept value 'yes'}): never read as "no encryption".
     *
     * @return the format's name, or {@code null} if no encryption is asked for
     * @throws IllegalArgumentException if both the option and its alias are given
     */
    public static String encryptionFormat(Map<String, String> options) {
        String format = options.get("encrypt.format");
        String alias = options.get("encryption");
        if (alias == null) {
            return format;
        }
        if (format != null) {
            throw new IllegalArgumentException("'encrypt.format' and its alias 'encryption' can't be used at the same "
                    + "time");
        }
        return switch (alias) {
            case "on" -> "aes";
            case "off" -> null;
            default -> alias;
        };
    }
}
