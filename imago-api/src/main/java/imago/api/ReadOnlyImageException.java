package imago.api;

/**
 * A write was attempted on an image or storage opened read-only.
 */
public class ReadOnlyImageException extends ImageException {
    private static final long serialVersionUID = 1L;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public ReadOnlyImageException(String resource, long offset, String detail) {
        super(resource, offset, detail, null);
    }

    /** An exception with no known offset. */
    public ReadOnlyImageException(String resource, String detail) {
        super(resource, -1, detail, null);
    }

}
