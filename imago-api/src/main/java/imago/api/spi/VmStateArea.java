package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A layer's VM state area (qcow2's, past the virtual disk), which {@link imago.api.Image#vmState()} hands to users
 * through {@link LayeredImage}: positions count from the start of the area, and the caller has checked that they
 * are not negative and that the range does not pass {@link Long#MAX_VALUE}. Thread-safe as the layer's other
 * requests.
 */
public interface VmStateArea extends Capability {

    /**
     * Reads {@code dst.remaining()} bytes of the area from {@code position}; what the layer never wrote reads as
     * {@code below} reads (at the offset the layer gives it, in the layer's own address space).
     *
     * @throws IllegalArgumentException if the range passes the area's end
     * @throws IOException if the layer cannot be read
     */
    void read(ByteBuffer dst, long position, BackingReader below) throws IOException;

    /**
     * Writes {@code src.remaining()} bytes into the area from {@code position}, allocating (and copying parts of
     * clusters from {@code below}) as the layer's other writes do, crash-safe.
     *
     * @throws imago.api.ImageLimitException if the layer's tables cannot grow to reach the range; nothing changed
     * @throws IllegalArgumentException if the range passes the area's end
     * @throws IOException if the write fails; the layer stays consistent
     */
    void write(ByteBuffer src, long position, BackingReader below) throws IOException;
}
