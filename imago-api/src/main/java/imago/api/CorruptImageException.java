package imago.api;

/**
 * The image's metadata is inconsistent or points where it must not: the file is damaged or hostile.
 */
public class CorruptImageException extends ImageException {
    private static final long serialVersionUID = 1L;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public CorruptImageException(String resource, long offset, String detail) {
        super(resource, offset, detail, null);
    }

    /** An exception with no known offset. */
    public CorruptImageException(String resource, String detail) {
        super(resource, -1, detail, null);
    }

    /** An exception with a cause, e.g. a decompression failure. */
    public CorruptImageException(String resource, long offset, String detail, Throwable cause) {
        super(resource, offset, detail, cause);
    }
}
