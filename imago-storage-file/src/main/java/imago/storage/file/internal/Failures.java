package imago.storage.file.internal;

import imago.api.ImageException;
import imago.api.ImageLimitException;
import java.io.IOException;
import java.util.Objects;

/** Turns failed libc calls and JDK I/O exceptions into the {@link ImageException}s the file storage reports. */
final class Failures {

    private Failures() {
    }

    static ImageException failure(String name, String op, ErrnoException e) {
        return failure(name, op, e.errno());
    }

    static ImageException failure(String name, String op, int errno) {
        if (errno == Errno.EFBIG) {
            // past the file system's largest file: a limit, which commands report as qemu-img reports EFBIG
            return new ImageLimitException(name, op + " failed: " + Errno.describe(errno));
        }
        return new ImageException(name, -1, op + " failed: " + Errno.describe(errno), null);
    }

    /** Whether {@code errno} says the file system refuses the call or mode (remembered, then not tried again). */
    static boolean unsupported(int errno) {
        return errno == Errno.EOPNOTSUPP || errno == Errno.ENOSYS || errno == Errno.EINVAL || errno == Errno.ENODEV;
    }

    /** {@code op} with its range; a negative length means the operation has none. */
    static String describe(String op, long offset, long length) {
        return length < 0 ? op : op + " at " + offset + "+" + length;
    }

    static String message(IOException e) {
        return Objects.requireNonNullElse(e.getMessage(), e.getClass().getSimpleName());
    }
}
