package imago.cli.convert;

import imago.api.CorruptImageException;
import java.io.IOException;

/**
 * A source that cannot be read while copying, reported as qemu-img convert reports it ({@code error while reading at
 * byte N: Input/output error}, or {@code Invalid argument} where QEMU's driver says so); the library's own message is
 * the cause.
 */
public final class ReadFailure extends IOException {
    private static final long serialVersionUID = 1L;

    /** Where the read that failed starts, in guest bytes. */
    private final long offset;

    ReadFailure(long offset, IOException cause) {
        this("error while reading at byte ", offset, cause);
    }

    /** A failure reported as {@code what}, the offset and the error's words. */
    ReadFailure(String what, long offset, IOException cause) {
        super(what + offset + ": " + strerror(cause), cause);
        this.offset = offset;
    }

    /**
     * qemu-img's words for the error QEMU's driver fails a request with where imago's meets {@code failure}:
     * {@code Invalid argument} for damage QEMU meets with {@code EINVAL}
     * ({@link CorruptImageException#invalidArgument()}), else {@code Input/output error}.
     */
    public static String strerror(Throwable failure) {
        return invalidArgument(failure) ? "Invalid argument" : "Input/output error";
    }

    /** Whether {@code failure}, or what caused it, is damage QEMU's driver meets with {@code EINVAL}. */
    public static boolean invalidArgument(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof CorruptImageException c && c.invalidArgument()) {
                return true;
            }
        }
        return false;
    }

    /** Where the read that failed starts, in guest bytes. */
    long offset() {
        return offset;
    }
}
