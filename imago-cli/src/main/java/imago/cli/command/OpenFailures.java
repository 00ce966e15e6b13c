package imago.cli.command;

import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * qemu-img's wording for an image that cannot be opened ({@code Could not open 'NAME': reason}), for the
 * commands whose messages follow qemu-img's byte for byte ({@code dd}, {@code convert}'s sources).
 */
final class OpenFailures {
    /** The offset the library appends to a message about a damaged or foreign image; qemu-img names none. */
    private static final Pattern AT_OFFSET = Pattern.compile(" \\(at offset \\d+\\)$");

    private OpenFailures() {
    }

    /**
     * Refuses a missing file or a directory before the library tries, as QEMU's file driver words it.
     *
     * @throws CliException if {@code typed} is missing or a directory
     */
    static void checkRegularFile(String typed) {
        Path path = Path.of(typed);
        if (Files.isDirectory(path)) {
            throw new CliException(null, "Could not open '" + typed + "': 'file' driver requires '" + typed
                    + "' to be a regular file");
        }
        if (!Files.exists(path)) {
            throw new CliException(null, "Could not open '" + typed + "': Could not open '" + typed
                    + "': No such file or directory");
        }
    }

    /** The message for {@code failure} while opening {@code typed}: {@code Could not open 'typed': reason}. */
    static CliException couldNotOpen(Session session, String typed, Throwable failure) {
        String reason = switch (failure) {
            case NoSuchFileException e -> "Could not open '" + typed + "': No such file or directory";
            case AccessDeniedException e -> "Could not open '" + typed + "': Permission denied";
            default -> withoutResource(session, Errors.describe(failure, session, null));
        };
        return new CliException(null, "Could not open '" + typed + "': " + reason);
    }

    /**
     * qemu-io's message for {@code failure} while opening {@code typed}: {@code can't open device typed: reason},
     * the reason as QEMU words it (without the library's file name and offset).
     */
    static CliException cantOpenDevice(Session session, String typed, Throwable failure) {
        String reason = switch (failure) {
            case CliException e -> e.getMessage();
            case NoSuchFileException e -> "Could not open '" + typed + "': No such file or directory";
            case AccessDeniedException e -> "Could not open '" + typed + "': Permission denied";
            default -> withoutResource(session, Errors.describe(failure, session, null));
        };
        return new CliException(null, "can't open device " + typed + ": " + reason);
    }

    /** {@code message} without a leading file name and a trailing offset. */
    private static String withoutResource(Session session, String message) {
        String m = AT_OFFSET.matcher(message).replaceFirst("");
        if (session.namesAFile(m)) {
            int colon = m.indexOf(": ");
            if (colon > 0) {
                m = m.substring(colon + 2);
            }
        }
        return m;
    }
}
