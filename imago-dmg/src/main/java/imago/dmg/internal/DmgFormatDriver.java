package imago.dmg.internal;

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
 * The dmg driver: Apple's UDIF disk images, read-only as in QEMU (see the package documentation). Stateless.
 *
 * <p>QEMU probes a dmg by its file name (".dmg"); a probe here sees only the first bytes, which a dmg does not mark,
 * so a dmg is opened with the format named ({@code -f dmg}).
 */
public final class DmgFormatDriver implements FormatDriver {
    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public DmgFormatDriver() {
    }

    @Override
    public String name() {
        return "dmg";
    }

    @Override
    public boolean readOnly() {
        return true;
    }

    @Override
    public int probeLength() {
        return 0;
    }

    /** Never: a dmg's first bytes are its data (see the class documentation). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        if (context.writable()) {
            throw new ReadOnlyImageException(storage.name(), "the dmg format can only be read");
        }
        return DmgInstance.open(storage);
    }

    /** Refused: dmg images are made by Apple's hdiutil (QEMU cannot create them either). */
    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        throw new UnsupportedOperationException("Format driver 'dmg' does not support image creation");
    }
}
