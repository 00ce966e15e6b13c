package imago.api;

/**
 * A header asks for more than a limit allows (a table too large, a chain too deep).
 */
public class ImageLimitException extends ImageException {
    private static final long serialVersionUID = 1L;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public ImageLimitException(String resource, long offset, String detail) {
        super(resource, offset, detail, null);
    }

    /** An exception with no known offset. */
    public ImageLimitException(String resource, String detail) {
        super(resource, -1, detail, null);
    }

}
