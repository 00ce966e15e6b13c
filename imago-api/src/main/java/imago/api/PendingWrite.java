package imago.api;

import java.io.IOException;

/**
 * A write whose costly part is done and that stores its result when {@link #write} is called: what
 * {@link Image#compress} returns, so that a caller can compress many clusters at once on several threads and still
 * store them in an order of its choosing (qemu-img convert {@code -c} stores them in guest order).
 */
@FunctionalInterface
public interface PendingWrite {

    /**
     * Stores what was prepared. Called at most once.
     *
     * @throws IOException if the write fails, as {@link Image#writeCompressed} would
     */
    void write() throws IOException;
}
