package imago.api;

import java.util.List;

/** No installed driver has the requested name, or none recognises the image; lists what is installed. */
public class UnknownFormatException extends ImageException {
    private static final long serialVersionUID = 1L;

    @SuppressWarnings("serial") // always an immutable List.copyOf list, which is serializable
    private final List<String> installed;

    /**
     * @param resource the image (or the requested format name when there is no image)
     * @param detail what was looked for
     * @param installed names of the installed format drivers
     */
    public UnknownFormatException(String resource, String detail, List<String> installed) {
        super(resource, -1, detail + " (installed formats: " + String.join(", ", installed) + ")", null);
        this.installed = List.copyOf(installed);
    }

    /** Names of the installed format drivers. */
    public List<String> installed() {
        return installed;
    }
}
