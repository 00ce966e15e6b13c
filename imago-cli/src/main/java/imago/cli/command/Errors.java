package imago.cli.command;

import imago.api.ImageException;
import imago.api.ImageLockedException;
import imago.cli.convert.ReadFailure;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Turns any failure into the one line the command prints for it (without the {@code imago: } prefix). */
final class Errors {

    private Errors() {
    }

    /** The message for {@code failure}, naming the file it concerns the way the user typed it. */
    static String describe(Throwable failure, Session session) {
        return describe(failure, session, session.currentFile());
    }

    /** The message for {@code failure}, about {@code context} (a typed file name, or {@code null}) if it names none. */
    static String describe(Throwable failure, Session session, String context) {
        Throwable t = failure;
        while (t instanceof UncheckedIOException && t.getCause() != null) {
            t = t.getCause();
        }
        return switch (t) {
            case CliException e -> e.file() == null ? e.getMessage() : e.file() + ": " + e.getMessage();
            case ReadFailure e -> e.getMessage();
            case NoSuchFileException e -> couldNotOpen(session, context, e, "No such file or directory");
            case AccessDeniedException e -> couldNotOpen(session, context, e, "Permission denied");
            case NotDirectoryException e -> couldNotOpen(session, context, e, "Not a directory");
            case FileSystemException e -> couldNotOpen(session, context, e,
                    e.getReason() != null ? e.getReason() : e.getClass().getSimpleName());
            // QEMU's error and hint, on qemu-img's two lines, the file named as typed
            case ImageLockedException e when QemuReasons.locked(e.detail(), null) != null -> withFile(session, context,
                    e.resource() + ": " + QemuReasons.locked(e.detail(), session.display(e.resource())));
            case ImageException e -> withFile(session, context, e.getMessage());
            case IOException e -> withFile(session, context, e.getMessage() != null ? e.getMessage()
                    : e.getClass().getSimpleName());
            case IllegalArgumentException e -> withFile(session, context, e.getMessage());
            case OutOfMemoryError e -> withFile(session, context, "Out of memory");
            default -> "internal error: " + t + (session.debug() ? "" : " (run with --debug for details)");
        };
    }

    private static String couldNotOpen(Session session, String context, FileSystemException e, String reason) {
        String file = session.display(e.getFile());
        String what = file == null ? reason : "Could not open '" + file + "': " + reason;
        String prefix = context != null ? context : file;
        return prefix == null ? what : prefix + ": " + what;
    }

    /** A message that already starts with a resource keeps it (as typed); others get the current file. */
    private static String withFile(Session session, String context, String message) {
        if (message == null) {
            message = "unknown error";
        }
        if (session.namesAFile(message) || context == null) {
            return session.rewrite(message);
        }
        return context + ": " + message;
    }
}
