package imago.api.spi;

import java.io.IOException;
import java.util.Map;
import java.util.function.DoubleConsumer;

/**
 * Changes the format options of an existing, writable layer in place ({@code qemu-img amend}): qcow2's version,
 * refcount width, lazy refcounts, external data file name. The probe module's {@code Opener.amend} hands it out;
 * the layer is closed right after.
 */
public interface Amender extends Capability {
    /** Changes the virtual size, as the image's own resize does (the layer cannot read its backing chain). */
    @FunctionalInterface
    interface Resize {
        void to(long size) throws IOException;
    }

    /**
     * Applies {@code options} (name to value, in the order given) as QEMU's driver does, refusing what it refuses
     * with its words.
     *
     * @param force whether the user insisted ({@code --force}): changes QEMU refuses unless forced go ahead
     * @param progress told the fraction done, from 0 to 1
     * @param resize changes the virtual size, for a {@code size} option
     * @throws IllegalArgumentException for an option the layer does not know or a value it cannot take
     * @throws imago.api.UnsupportedFeatureException for a change the layer cannot make to this image
     * @throws IOException if the storage fails
     */
    void amend(Map<String, String> options, boolean force, DoubleConsumer progress, Resize resize) throws IOException;
}
