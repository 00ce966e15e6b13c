package imago.vmdk.internal;

import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@code FLAT} or {@code VMFS} extent: guest bytes at {@code start} bytes into a plain file, written in place.
 *
 * @param storage the file
 * @param start where the extent begins in it, in bytes
 * @param size the extent's size in bytes
 * @param writable whether the extent may be written (an {@code RW} line, opened for writing)
 */
record VmdkFlatExtent(Storage storage, long start, long size, boolean writable) implements VmdkExtent {

    @Override
    public Mapping mapping(long base, long offset, long maxLength) {
        return new Mapping.Data(base + offset, Math.min(maxLength, size - offset), storage, start + offset);
    }

    @Override
    public WriteTicket beginWrite(long base, long offset, long length, BackingReader below)
            throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), "the extent is read-only");
        }
        return WriteTicket.of(new Mapping.Data(base + offset, Math.min(length, size - offset), storage,
                start + offset));
    }

    @Override
    public boolean flat() {
        return true;
    }

    @Override
    public Map<String, Object> info(String format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", storage.name());
        m.put("format", format);
        m.put("virtual-size", size);
        return m;
    }
}
