package imago.api.spi;

import imago.api.CheckReport;
import imago.api.Repair;
import java.io.IOException;

/**
 * Checks and repairs a layer's metadata as {@code qemu-img check} does. Called with every other request of the
 * image excluded. A layer opened with {@link OpenContext#forCheck()} must not have failed to open on the damage
 * this reports.
 */
public interface Checker extends Capability {

    /**
     * Checks and, if {@code repair} allows, repairs; after a repair the report is that of a second check, with
     * the fixed counts of the first.
     *
     * @throws imago.api.ReadOnlyImageException if {@code repair} is not {@link Repair#NONE} and the layer is
     *         read-only
     * @throws IOException if the storage fails; damage is reported, not thrown
     */
    CheckReport check(Repair repair) throws IOException;
}
