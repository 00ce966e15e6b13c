package imago.vmdk.internal;

import imago.api.Feature;
import imago.api.Mapping;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@code ZERO} extent: reads as zeroes, has no file, cannot be written.
 *
 * @param resource the descriptor, for messages
 * @param size the extent's size in bytes
 */
record VmdkZeroExtent(String resource, long size) implements VmdkExtent {

    @Override
    public Mapping mapping(long base, long offset, long maxLength) {
        return Mapping.Zero.unreserved(base + offset, Math.min(maxLength, size - offset));
    }

    /** Zeroes stay zeroes: there is nothing to do. */
    @Override
    public long ensureZero(long offset, long length) {
        return Math.min(length, size - offset);
    }

    @Override
    public WriteTicket beginWrite(long base, long offset, long length, BackingReader below)
            throws UnsupportedFeatureException {
        throw new UnsupportedFeatureException(resource, Feature.OTHER, "writes to a ZERO extent",
                "cannot write at guest offset " + (base + offset) + ": it lies in a ZERO extent, which has no file");
    }

    @Override
    public Storage storage() {
        return null;
    }

    @Override
    public Map<String, Object> info(String format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", "");
        m.put("format", format);
        m.put("virtual-size", size);
        return m;
    }
}
