package imago.api;

/**
 * Another process or open image holds the lock that a writable open needs.
 */
public class ImageLockedException extends ImageException {
    private static final long serialVersionUID = 1L;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public ImageLockedException(String resource, long offset, String detail) {
        super(resource, offset, detail, null);
    }

    /** An exception with no known offset. */
    public ImageLockedException(String resource, String detail) {
        super(resource, -1, detail, null);
    }

}
