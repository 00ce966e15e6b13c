package imago.cli.command;

import imago.cli.text.Sizes;
import imago.probe.Imago;
import java.util.List;

/** Checks of command-line values shared by the subcommands, with qemu-img's messages. */
final class Arguments {

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
            throw new CliException(null, "Invalid " + what + " specified ('" + text + "'). You may use k, M, G, T, "
                    + "P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
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
}
