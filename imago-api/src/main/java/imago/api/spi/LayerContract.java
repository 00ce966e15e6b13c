package imago.api.spi;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.Mapping;

/**
 * The bounds a request must keep and the contract a driver's mappings must keep, with messages that name the
 * image and the driver: a buggy or confused driver cannot misdirect I/O.
 */
final class LayerContract {
    private final String name;
    private final String format;
    private final FormatInstance layer;

    LayerContract(String name, String format, FormatInstance layer) {
        this.name = name;
        this.format = format;
        this.layer = layer;
    }

    /** Requires {@code [offset, offset + length)} inside the image. */
    void checkRange(String what, long offset, long length) {
        long size = layer.size();
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new IllegalArgumentException(name + ": " + what + " of " + length + " bytes at offset "
                    + offset + " is outside the image (size " + size + ")");
        }
    }

    /** Requires a mapping query to start inside the image and ask for at least one byte. */
    void checkQuery(long offset, long maxLength) {
        long size = layer.size();
        if (offset < 0 || offset >= size || maxLength < 1) {
            throw new IllegalArgumentException(name + ": no mapping at offset " + offset + " (size " + size
                    + ", length " + maxLength + ")");
        }
    }

    /** {@code m}, once it is known to start at {@code offset} and to cover 1 to {@code maxLength} bytes. */
    <M extends Mapping> M checked(M m, long offset, long maxLength) throws ImageException {
        if (m instanceof Mapping.EndOfImage) {
            throw new CorruptImageException(name, "image ends at guest offset " + offset + " before its size "
                    + layer.size());
        }
        if (m.offset() != offset || m.length() < 1 || m.length() > maxLength) {
            throw new IllegalStateException(format + " driver returned " + m + " for a request of " + maxLength
                    + " bytes at " + offset);
        }
        return m;
    }
}
