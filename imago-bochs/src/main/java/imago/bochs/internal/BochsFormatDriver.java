package imago.bochs.internal;

import imago.api.CreateOptions;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The bochs driver: Bochs' growing redolog images, read-only as in QEMU (see the package documentation). Stateless.
 */
public final class BochsFormatDriver implements FormatDriver {
    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public BochsFormatDriver() {
    }

    @Override
    public String name() {
        return "bochs";
    }

    @Override
    public boolean readOnly() {
        return true;
    }

    @Override
    public int probeLength() {
        return BochsHeader.SECTOR;
    }

    /** {@link Confidence#STRONG} for the magic, type, subtype and a known version, as QEMU's probe. */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return BochsHeader.recognised(head) ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        if (context.writable()) {
            throw new ReadOnlyImageException(storage.name(), "the bochs format can only be read");
        }
        return BochsInstance.open(storage);
    }

    /** Refused: bochs images are made by bximage (QEMU cannot create them either). */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        throw new UnsupportedOperationException("Format driver 'bochs' does not support image creation");
    }
}
