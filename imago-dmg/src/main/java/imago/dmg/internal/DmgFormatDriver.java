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
import java.util.Set;

/**
 * The dmg driver: Apple's UDIF disk images, read-only as in QEMU (see the package documentation). Stateless.
 *
 * <p>A dmg's first bytes are its data: as in QEMU, a file whose name ends with ".dmg" probes as dmg (above raw, below
 * any format with a magic number); any other is opened with the format named ({@code -f dmg}).
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

    /** Never by its bytes: a dmg's first bytes are its data (see the class documentation). */
    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        return Confidence.NONE;
    }

    @Override
    public Set<String> probedSuffixes() {
        return Set.of(".dmg");
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
