package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads what lies below a layer (its backing chain, or zeroes when it has none), for copy-on-write, and
 * tells where it reads as zero, for zero writes.
 */
@FunctionalInterface
public interface BackingReader {

    /** Reads nothing but zeroes: for layers without a backing image. */
    BackingReader ZEROES = new BackingReader() {
        @Override
        public void read(ByteBuffer dst, long offset) {
            java.lang.foreign.MemorySegment.ofBuffer(dst).fill((byte) 0);
            dst.position(dst.limit());
        }

        @Override
        public boolean readsAsZero(long offset, long length) {
            return true;
        }
    };

    /**
     * Fills {@code dst} with the guest bytes below the layer from {@code offset}; bytes past the end of
     * the backing image read as zeroes.
     *
     * @throws IOException if the backing chain cannot be read
     */
    void read(ByteBuffer dst, long offset) throws IOException;

    /**
     * Whether every byte of {@code [offset, offset + length)} below the layer reads as zero by what the
     * chain's metadata says, without reading data: as the {@code zero} field of
     * {@link imago.api.Image#extent extents} (QEMU's block status), so unallocated throughout the chain, zero
     * clusters, storage holes where the format maps them, and anything past the end of the backing image.
     * An empty range reads as zero.
     *
     * @implSpec The default does not know and says no, which only costs a zero write its shortcut.
     * @throws IOException if the backing chain's metadata cannot be read
     */
    default boolean readsAsZero(long offset, long length) throws IOException {
        return length == 0;
    }
}
