package imago.cli.command;

/**
 * A failure the command reports as one line, {@code imago: FILE: message} or {@code imago: message}.
 */
public final class CliException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String file;

    /**
     * @param file the file the message is about, as the user typed it, or {@code null}
     * @param message what went wrong
     */
    public CliException(String file, String message) {
        super(message);
        this.file = file;
    }

    /** The file the message is about, or {@code null}. */
    public String file() {
        return file;
    }
}
