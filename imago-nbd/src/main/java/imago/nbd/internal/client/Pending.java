package imago.nbd.internal.client;

import imago.api.ImageException;
import imago.nbd.internal.Request;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One request waiting for its reply. The connection's reader thread fills it (the read data straight into the
 * caller's buffer, block status descriptors, an error) and completes it once; the caller waits for that.
 */
final class Pending {
    final Request request;
    /** Where a read's data goes: exactly {@code request.length()} bytes, position 0. */
    final ByteBuffer destination;
    /** Block status descriptors, in order: length then flags. */
    final List<long[]> descriptors = new ArrayList<>();
    /** Bytes of a read that chunks covered so far. */
    long covered;
    private int error;
    private String message;
    private long errorOffset = -1;
    private IOException failure;
    private final AtomicBoolean completed = new AtomicBoolean();
    private final CountDownLatch done = new CountDownLatch(1);

    Pending(Request request, ByteBuffer destination) {
        this.request = request;
        this.destination = destination;
    }

    /** Records the server's error (the first one wins, as the specification lets a reply carry several). */
    void error(int code, String text, long offset) {
        if (error == 0) {
            error = code == 0 ? ErrorCodes.EIO : code;
            message = text;
            errorOffset = offset;
        }
    }

    boolean hasError() {
        return error != 0;
    }

    /** Completes the request, with {@code cause} when the connection failed under it. Only the first call counts. */
    boolean complete(IOException cause) {
        // the reader and a failing connection may both complete a request: one of them does
        if (!completed.compareAndSet(false, true)) {
            return false;
        }
        failure = cause;
        done.countDown();
        return true;
    }

    boolean await(long nanos) throws InterruptedException {
        return done.await(nanos, TimeUnit.NANOSECONDS);
    }

    /** After completion: throws what went wrong. */
    void check(String resource) throws IOException {
        if (failure != null) {
            throw failure;
        }
        if (error != 0) {
            long at = errorOffset >= 0 ? errorOffset : request.offset();
            String detail = ErrorCodes.describe(error) + (message == null || message.isBlank() ? "" : " (" + message
                    + ")");
            throw new ImageException(resource, at, ErrorCodes.command(request.type()) + " failed: " + detail, null);
        }
    }
}
