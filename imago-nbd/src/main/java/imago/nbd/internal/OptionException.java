package imago.nbd.internal;

/**
 * An option the server refuses: the error reply to send ({@code NBD_REP_ERR_*}) and the message that goes with
 * it. The client may go on negotiating.
 */
public final class OptionException extends Exception {
    private static final long serialVersionUID = 1L;

    /** The {@code NBD_REP_ERR_*} reply type. */
    private final int reply;

    OptionException(int reply, String message) {
        super(message);
        this.reply = reply;
    }

    /** The {@code NBD_REP_ERR_*} reply type. */
    public int reply() {
        return reply;
    }
}
