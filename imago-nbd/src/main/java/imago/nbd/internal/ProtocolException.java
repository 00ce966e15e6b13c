package imago.nbd.internal;

import java.io.IOException;

/** The peer broke the protocol in a way that ends the connection (a bad magic, unknown client flags). */
final class ProtocolException extends IOException {
    private static final long serialVersionUID = 1L;

    ProtocolException(String message) {
        super(message);
    }
}
