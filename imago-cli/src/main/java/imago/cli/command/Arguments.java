package imago.cli.command;

import imago.api.UnknownFormatException;
import imago.cli.text.Sizes;
import imago.probe.Imago;
import java.util.List;
import java.util.Set;

/** Checks of command-line values shared by the subcommands, with qemu-img's messages. */
final class Arguments {
    /** qemu-img's cache mode names ({@code bdrv_parse_cache_mode}); {@code off} is {@code none}. */
    static final Set<String> CACHE_MODES = Set.of("none", "off", "writeback", "unsafe", "directsync", "writethrough");

    /**
     * A size as {@link #size(String, String, long)} reads it, with the older wording of qemu-img's cvtnum for a value
     * that is not a size: two reports, {@code Invalid WHAT specified. You may use ... suffixes for} and the suffixes
     * ({@code bitmap -g}, {@code bench -s/-S}); {@code Long.MAX_VALUE} for no maximum.
     */
    static long sizeInTwoReports(String what, String text, long max) {
        return max == Long.MAX_VALUE ? size(what, text) : size(what, text, max);
    }

    /**
     * Refuses a cache mode qemu-img does not know, in its words: {@code Invalid cache option: MODE} for the image's
     * ({@code -t}), {@code Invalid source cache option: MODE} for a source's ({@code -T}); {@code null} is the default.
     *
     * @throws CliException if {@code mode} is not a cache mode
     */
    static void checkCacheMode(String mode, boolean source) {
        if (mode != null && !CACHE_MODES.contains(mode)) {
            throw new CliException(null, "Invalid " + (source ? "source " : "") + "cache option: " + mode);
        }
    }

    private Arguments() {
    }

    /** A size argument as qemu-img's {@code cvtnum} reads it; {@code what} names it in messages. */
    static long size(String what, String text) {
        try {
            return Sizes.parse(text);
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.TOO_LARGE) {
                throw new CliException(null, "Invalid " + what + " specified. Must be between 0 and "
                        + Long.MAX_VALUE + ".");
            }
            throw new CliException(null, "Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for"
                    + Session.NEXT_REPORT + "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        }
    }

    /**
     * A size given as a {@code -o size=} option, refused as QEMU's option parser refuses it when it is not a number;
     * a number past 63 bits gets {@link #size}'s range message (qemu-img 7.2 takes up to 2^64 there and then fails to
     * create an image of a negative size).
     */
    static long sizeOption(String file, String text) {
        try {
            return Sizes.parse(text);
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.TOO_LARGE) {
                return size("image size", text);
            }
            throw new CliException(file, "Parameter 'size' expects a non-negative number below 2^64\n"
                    + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                    + "and exabytes, respectively.");
        }
    }

    /**
     * A size argument that must be at most {@code max}, with qemu-img's {@code cvtnum_full} message when
     * it is larger.
     */
    static long size(String what, String text, long max) {
        long v;
        try {
            v = size(what, text);
        } catch (CliException e) {
            if (!e.getMessage().contains("Must be between")) {
                throw e;
            }
            v = Long.MAX_VALUE;
        }
        if (v > max) {
            throw new CliException(null, "Invalid " + what + " specified. Must be between 0 and " + max + ".");
        }
        return v;
    }

    /** qemu's warning when probing picked raw for an image opened writable. */
    static void warnProbedRaw(Session session, String file) {
        session.err().println("WARNING: Image format was not specified for '" + file
                + "' and probing guessed raw.\n"
                + "         Automatically detecting the format is dangerous for raw images, write operations "
                + "on block 0 will be restricted.\n"
                + "         Specify the 'raw' format explicitly to remove the restrictions.");
    }

    /**
     * Refuses {@code -b} or {@code -F} for a format without backing files, as qemu-img does before it makes the file
     * (the backing file's refusal first).
     *
     * @param file the file to name in the message, or {@code null} ({@code convert} names none)
     */
    static void backingOptions(String file, String format, boolean backing, boolean backingFormat)
            throws UnknownFormatException {
        if ((backing || backingFormat) && !Imago.describe(format).backingFile()) {
            throw new CliException(file, (backing ? "Backing file" : "Backing file format")
                    + " not supported for file format '" + format + "'");
        }
    }

    /** Refuses a format no installed driver has, listing those that are installed. */
    static void installedFormat(String file, String format) {
        List<String> formats = Imago.formats();
        if (!formats.contains(format)) {
            throw new CliException(file, "Unknown file format '" + format + "' (installed formats: "
                    + String.join(", ", formats) + ")");
        }
    }

    /** A number as qemu-img's {@code cvtnum}: 0 up to the largest signed 64-bit value. */
    static long cvtnum(String what, String text) {
        return cvtnum(what, text, 0, Long.MAX_VALUE);
    }

    /** A number as qemu-img's {@code cvtnum_full} reads it, between {@code min} and {@code max}. */
    static long cvtnum(String what, String text, long min, long max) {
        String range = "Invalid " + what + " specified. Must be between " + min + " and " + max + ".";
        long v;
        try {
            v = Sizes.parse(text);
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.TOO_LARGE) {
                throw new CliException(null, range);
            }
            throw new CliException(null, "Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for"
                    + Session.NEXT_REPORT + "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        }
        if (v < min || v > max) {
            throw new CliException(null, range);
        }
        return v;
    }
}
