package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Stores clusters compressed. Runs concurrently with other requests; it compresses in the calling thread, so
 * callers parallelise ({@code convert -c}).
 */
public interface CompressedWriter extends Capability {

    /**
     * Stores one cluster compressed at guest {@code offset} (cluster aligned): {@code cluster} holds the whole
     * cluster, or for the last cluster of an image whose size is not a multiple of the cluster size, the bytes up
     * to the end of the image (the driver pads them with zeroes). Returns {@code false}, changing nothing, when
     * the data does not shrink: the caller then writes it the ordinary way. The buffer's position is left
     * unchanged.
     *
     * @throws IOException if the cluster is already allocated, or the write fails; the layer stays consistent
     */
    boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException;
}
