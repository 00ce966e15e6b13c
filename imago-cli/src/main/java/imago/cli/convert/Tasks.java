package imago.cli.convert;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/** Waiting for the copy's tasks, and turning their failures into the one {@link IOException} a copy throws. */
final class Tasks {

    private Tasks() {
    }

    /** Waits for {@code f}, rethrowing its failure. */
    static void await(Future<Void> f) throws IOException {
        try {
            f.get();
        } catch (ExecutionException e) {
            throw merge(null, e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        }
    }

    /**
     * {@code first} with {@code next} added as suppressed, or {@code next} as an {@link IOException} when it is the
     * first; errors, and a first unchecked exception, are thrown as they are.
     */
    static IOException merge(IOException first, Throwable next) {
        if (next instanceof Error e) {
            throw e;
        }
        if (next instanceof RuntimeException r && first == null) {
            throw r;
        }
        IOException io = next instanceof IOException i ? i : new IOException(next.toString(), next);
        if (first == null) {
            return io;
        }
        if (first != io) {
            first.addSuppressed(io);
        }
        return first;
    }
}
