package imago.moduletests.plugin;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The {@code imagotst} driver: a third-party format known to no other imago module, found through
 * {@code provides} on the module path and {@code META-INF/services} on the class path.
 */
public final class TstFormatDriver implements FormatDriver {

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public TstFormatDriver() {
    }

    @Override
    public String name() {
        return "imagotst";
    }

    @Override
    public int probeLength() {
        return TstHeader.MAGIC.length;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return TstHeader.hasMagic(head) ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        long size = storage.size();
        if (size < TstHeader.FIELDS_LENGTH) {
            throw new CorruptImageException(storage.name(), size, "imagotst header is truncated: the file has "
                    + size + " bytes, the header fields " + TstHeader.FIELDS_LENGTH);
        }
        ByteBuffer buf = ByteBuffer.allocate(TstHeader.LENGTH);
        storage.read(buf, 0); // the reserved bytes of a short header read as zeroes
        TstHeader header = TstHeader.parse(storage.name(), buf.flip());
        return new TstFormatInstance(storage, header, context.writable());
    }

    /**
     * Writes the header and sizes the storage to hold the data (sparse unless preallocated).
     *
     * @throws IllegalArgumentException for format options, a backing file or a size too large
     */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        if (!options.formatOptions().isEmpty()) {
            throw new IllegalArgumentException("imagotst takes no options, got "
                    + String.join(", ", options.formatOptions().keySet()));
        }
        if (options.backingFile().isPresent()) {
            throw new IllegalArgumentException("Backing file not supported for file format 'imagotst'");
        }
        long size = options.size().orElseThrow(() -> new IllegalArgumentException("imagotst needs a size"));
        if (size > TstHeader.MAX_SIZE) {
            throw new IllegalArgumentException("imagotst images are at most " + TstHeader.MAX_SIZE + " bytes");
        }
        storage.write(new TstHeader(size, TstHeader.VERSION).toBuffer(), 0);
        storage.resize(TstHeader.LENGTH + size, options.preallocation());
    }
}
