package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads what lies below a layer (its backing chain, or zeroes when it has none), for copy-on-write.
 */
@FunctionalInterface
public interface BackingReader {

    /** Reads nothing but zeroes: for layers without a backing image. */
    BackingReader ZEROES = (dst, offset) -> {
        java.lang.foreign.MemorySegment.ofBuffer(dst).fill((byte) 0);
        dst.position(dst.limit());
    };

    /**
     * Fills {@code dst} with the guest bytes below the layer from {@code offset}; bytes past the end of
     * the backing image read as zeroes.
     *
     * @throws IOException if the backing chain cannot be read
     */
    void read(ByteBuffer dst, long offset) throws IOException;
}
