package imago.cloop.internal;

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
 * The cloop driver: compressed loop images, read-only as in QEMU (see the package documentation). Stateless.
 */
public final class CloopFormatDriver implements FormatDriver {
    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public CloopFormatDriver() {
    }

    @Override
    public String name() {
        return "cloop";
    }

    @Override
    public boolean readOnly() {
        return true;
    }

    @Override
    public int probeLength() {
        return CloopTable.MAGIC_V2.length;
    }

    /** {@link Confidence#STRONG} for the version 2.0 script QEMU's probe looks for (no other cloop is probed). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return CloopTable.recognised(head) ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        if (context.writable()) {
            throw new ReadOnlyImageException(storage.name(), "the cloop format can only be read");
        }
        return CloopInstance.open(storage);
    }

    /** Refused: cloop images are made by create_compressed_fs (QEMU cannot create them either). */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        throw new UnsupportedOperationException("Format driver 'cloop' does not support image creation");
    }
}
