package imago.vmdk.internal;

import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An extent marked {@code NOACCESS}: its file is not opened, and reading or writing it is an error.
 *
 * @param resource the descriptor, for messages
 * @param size the extent's size in bytes
 * @param fileName the file the line names
 * @param line the descriptor line
 */
record VmdkNoAccessExtent(String resource, long size, String fileName, int line) implements VmdkExtent {

    @Override
    public Mapping mapping(long base, long offset, long maxLength) throws ImageException {
        throw denied(base + offset);
    }

    @Override
    public WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws ImageException {
        throw denied(base + offset);
    }

    private ImageException denied(long guest) {
        return new ImageException(resource, "guest offset " + guest + " lies in the NOACCESS extent of descriptor line "
                + line + " ('" + fileName + "')");
    }

    @Override
    public Storage storage() {
        return null;
    }

    @Override
    public Map<String, Object> info(String format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", fileName);
        m.put("format", format);
        m.put("virtual-size", size);
        return m;
    }
}
