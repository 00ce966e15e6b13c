package imago.api;

/**
 * The {@link imago.api.OpenGate} refused to open a file that an image names.
 */
public class OpenDeniedException extends ImageException {
    private static final long serialVersionUID = 1L;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     */
    public OpenDeniedException(String resource, long offset, String detail) {
        super(resource, offset, detail, null);
    }

    /** An exception with no known offset. */
    public OpenDeniedException(String resource, String detail) {
        super(resource, -1, detail, null);
    }

}
