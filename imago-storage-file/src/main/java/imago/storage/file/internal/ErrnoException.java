package imago.storage.file.internal;

/**
 * A libc call failed with {@link #errno()}. Internal: {@link Failures} turns it into an
 * {@link java.io.IOException} that names the file and the operation, or into a fallback.
 */
final class ErrnoException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int errno;

    ErrnoException(int errno) {
        super(Errno.describe(errno), null, false, false); // no stack trace: often expected (ENXIO, EOPNOTSUPP)
        this.errno = errno;
    }

    int errno() {
        return errno;
    }
}
