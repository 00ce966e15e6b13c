package imago.api;

import java.io.IOException;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * The root of imago's exceptions: an {@link IOException} that names the resource it concerns and,
 * where known, the byte offset in that resource. {@link #getMessage()} reads
 * {@code "resource: message"} (with {@code " (at offset N)"} when an offset is known).
 */
public class ImageException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String resource;
    private final long offset;
    private final String detail;

    /**
     * @param resource the file or storage name the problem concerns
     * @param offset byte offset in it, or -1 when not known
     * @param detail what is wrong
     * @param cause the underlying failure, may be {@code null}
     */
    public ImageException(String resource, long offset, String detail, Throwable cause) {
        super(format(resource, offset, detail), cause);
        this.resource = Objects.requireNonNull(resource, "resource");
        this.offset = offset;
        this.detail = Objects.requireNonNull(detail, "detail");
    }

    /** An exception with no known offset and no cause. */
    public ImageException(String resource, String detail) {
        this(resource, -1, detail, null);
    }

    private static String format(String resource, long offset, String detail) {
        return offset >= 0 ? resource + ": " + detail + " (at offset " + offset + ")" : resource + ": " + detail;
    }

    /** The resource (file path, {@code memory:} name) the problem concerns. */
    public String resource() {
        return resource;
    }

    /** The byte offset in {@link #resource()}, when known. */
    public OptionalLong offset() {
        return offset >= 0 ? OptionalLong.of(offset) : OptionalLong.empty();
    }

    /** The message without the resource name and offset. */
    public String detail() {
        return detail;
    }
}
