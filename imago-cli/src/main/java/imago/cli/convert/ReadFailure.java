package imago.cli.convert;

import java.io.IOException;

/**
 * A source that cannot be read while copying, reported as qemu-img convert reports it ({@code error while reading at
 * byte N: Input/output error}); the library's own message is the cause.
 */
public final class ReadFailure extends IOException {
    private static final long serialVersionUID = 1L;

    /** Where the read that failed starts, in guest bytes. */
    private final long offset;

    ReadFailure(long offset, IOException cause) {
        super("error while reading at byte " + offset + ": Input/output error", cause);
        this.offset = offset;
    }

    /** Where the read that failed starts, in guest bytes. */
    long offset() {
        return offset;
    }
}
