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
     * to the end of the image (the driver pads them with zeroes); or nothing, at offset 0, to end a run of compressed
     * writes as {@code qemu-img convert -c} ends it (qcow2 rounds the file's end up to 512 bytes; a driver with
     * nothing to do returns {@code true}). Returns {@code false}, changing nothing, when
     * the data does not shrink: the caller then writes it the ordinary way. The buffer's position is left
     * unchanged.
     *
     * @throws IOException if the cluster is already allocated, or the write fails; the layer stays consistent
     */
    boolean writeCompressed(ByteBuffer cluster, long offset) throws IOException;

    /** A compressed cluster waiting to be stored. */
    @FunctionalInterface
    interface Store {
        /**
         * Stores the cluster; returns {@code false}, changing nothing, when the data did not shrink (the caller then
         * writes it the ordinary way).
         *
         * @throws IOException as {@link #writeCompressed}
         */
        boolean store() throws IOException;
    }

    /**
     * Compresses a cluster as {@link #writeCompressed} would, now, and returns what stores it, in any order with other
     * requests and later; a store never made changes nothing. {@code cluster} does not change until then.
     *
     * @implSpec The default compresses nothing now: the store calls {@link #writeCompressed}.
     * @throws IOException if the cluster cannot be compressed
     */
    default Store compress(ByteBuffer cluster, long offset) throws IOException {
        return () -> writeCompressed(cluster, offset);
    }
}
