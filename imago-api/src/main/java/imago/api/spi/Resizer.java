package imago.api.spi;

import imago.api.Preallocation;
import java.io.IOException;

/** Changes a layer's virtual size. Called with every other request of the image excluded. */
public interface Resizer extends Capability {

    /**
     * Changes the virtual size. A layer that grows while its backing image is longer than its old size makes the
     * new area read as zero rather than show the backing image (QEMU's bdrv_co_truncate), copying from
     * {@code below} where it allocates a partial allocation unit.
     *
     * @param newSize the new virtual size in bytes
     * @param preallocation how to reserve the space of a growth
     * @param below what lies below the layer
     * @throws imago.api.UnsupportedFeatureException if this size or preallocation mode cannot be done
     * @throws IllegalArgumentException if the format cannot take {@code newSize}
     * @throws IOException if the resize fails; the layer stays consistent
     */
    void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException;
}
