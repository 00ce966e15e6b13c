package imago.api;

/**
 * The image's metadata is inconsistent or points where it must not: the file is damaged or hostile.
 */
public class CorruptImageException extends ImageException {
    private static final long serialVersionUID = 1L;

    /** See {@link #invalidArgument()}. */
    private final boolean invalidArgument;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public CorruptImageException(String resource, long offset, String detail) {
        this(resource, offset, detail, null, false);
    }

    /** An exception with no known offset. */
    public CorruptImageException(String resource, String detail) {
        this(resource, -1, detail, null, false);
    }

    /** An exception with a cause, e.g. a decompression failure. */
    public CorruptImageException(String resource, long offset, String detail, Throwable cause) {
        this(resource, offset, detail, cause, false);
    }

    /**
     * Damage that QEMU's driver of the format meets with {@code EINVAL} rather than {@code EIO} when a request reaches
     * it (qemu-img then says {@code Invalid argument}): a table entry it finds invalid while reading, a compressed
     * grain that does not decode.
     *
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     * @param cause what was thrown first, or {@code null}
     * @return the exception, whose {@link #invalidArgument()} is true
     */
    public static CorruptImageException invalidArgument(String resource, long offset, String detail,
            Throwable cause) {
        return new CorruptImageException(resource, offset, detail, cause, true);
    }

    /**
     * As {@link #invalidArgument(String, long, String, Throwable)}, without a cause.
     *
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     * @return the exception, whose {@link #invalidArgument()} is true
     */
    public static CorruptImageException invalidArgument(String resource, long offset, String detail) {
        return new CorruptImageException(resource, offset, detail, null, true);
    }

    private CorruptImageException(String resource, long offset, String detail, Throwable cause,
            boolean invalidArgument) {
        super(resource, offset, detail, cause);
        this.invalidArgument = invalidArgument;
    }

    /**
     * Whether QEMU's driver meets this damage with {@code EINVAL} ({@code Invalid argument}) rather than {@code EIO}.
     *
     * @return true if made by {@link #invalidArgument}
     */
    public boolean invalidArgument() {
        return invalidArgument;
    }
}
