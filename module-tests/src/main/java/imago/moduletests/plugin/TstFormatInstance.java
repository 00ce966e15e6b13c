package imago.moduletests.plugin;

import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.util.Map;

/** One open imagotst image: every guest byte maps to the storage 512 bytes further on. */
final class TstFormatInstance implements FormatInstance, Resizer {
    private final Storage storage;
    private final boolean writable;
    /** Changed only by {@link #resize}, which the generic I/O path runs with every request excluded. */
    private volatile TstHeader header;

    TstFormatInstance(Storage storage, TstHeader header, boolean writable) {
        this.storage = storage;
        this.header = header;
        this.writable = writable;
    }

    @Override
    public long size() {
        return header.size();
    }

    @Override
    public Mapping mapping(long offset, long maxLength) {
        long size = header.size();
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        return new Mapping.Data(offset, Math.min(maxLength, size - offset), storage, TstHeader.LENGTH + offset);
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), "image is opened read-only");
        }
        return WriteTicket.of(new Mapping.Data(offset, Math.min(length, header.size() - offset), storage,
                TstHeader.LENGTH + offset));
    }

    @Override
    public void flush() throws IOException {
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    /**
     * Grows the storage before the header claims the room, and shrinks it only after the header gave
     * it up, so that at no point does the header claim bytes beyond the storage's end.
     */
    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), "image is opened read-only");
        }
        if (newSize > TstHeader.MAX_SIZE) {
            throw new IllegalArgumentException("imagotst images are at most " + TstHeader.MAX_SIZE + " bytes");
        }
        TstHeader resized = new TstHeader(newSize, header.version());
        if (newSize >= header.size()) {
            storage.resize(TstHeader.LENGTH + newSize, preallocation);
            storage.write(resized.toBuffer(), 0);
        } else {
            storage.write(resized.toBuffer(), 0);
            storage.resize(TstHeader.LENGTH + newSize, preallocation);
        }
        header = resized;
    }

    @Override
    public Map<String, Object> formatSpecific() {
        return Map.of("version", header.version());
    }

    @Override
    public void close() {
        // nothing cached; the caller closes the storage
    }
}
