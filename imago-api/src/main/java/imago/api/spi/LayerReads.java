package imago.api.spi;

import imago.api.Mapping;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * The read path of a {@link LayeredImage}: a request split by the layer's mappings, data read from storage,
 * zeroes filled, unallocated ranges read from below, special mappings decoded by the driver.
 */
final class LayerReads {
    private final FormatInstance layer;
    private final BackingReader below;
    private final LayerContract contract;

    LayerReads(FormatInstance layer, BackingReader below, LayerContract contract) {
        this.layer = layer;
        this.below = below;
        this.contract = contract;
    }

    /** Fills {@code dst} with the guest bytes from {@code offset}. */
    void read(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            Mapping m = contract.checked(layer.readMapping(pos, dst.remaining()), pos, dst.remaining());
            int n = (int) m.length();
            ByteBuffer part = dst.slice(dst.position(), n);
            // instanceof tests, not a pattern switch over the sealed Mapping: its bootstrap spins a class on the first
            // read, which no AOT cache of JDK 25 keeps (~3-8 ms of a cold convert, as LayerExtents says for map)
            if (m instanceof Mapping.Data d) {
                d.storage().read(part, d.hostOffset());
            } else if (m instanceof Mapping.Zero) {
                MemorySegment.ofBuffer(part).fill((byte) 0);
            } else if (m instanceof Mapping.Unallocated) {
                below.read(part, pos);
            } else if (m instanceof Mapping.Special s) {
                layer.readSpecial(s, part, pos);
            } else {
                throw new IllegalStateException("unreachable: " + m); // EndOfImage, which checked() refuses
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }
}
