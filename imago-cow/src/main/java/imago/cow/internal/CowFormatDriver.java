package imago.cow.internal;

import imago.api.CreateOptions;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The cow driver: recognises UML and QEMU cow images by magic and version; opening arrives later. */
public final class CowFormatDriver implements FormatDriver {
    /** "MOOO" read big-endian. */
    static final int MAGIC = 0x4F4F4F4D;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public CowFormatDriver() {
    }

    @Override
    public String name() {
        return "cow";
    }

    @Override
    public int probeLength() {
        return 8;
    }

    @Override
    public Confidence probe(ByteBuffer head, long storageSize) {
        if (head.remaining() < 8) {
            return Confidence.NONE;
        }
        int p = head.position();
        ByteBuffer be = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (be.getInt(p) == MAGIC) {
            int version = be.getInt(p + 4);
            return version >= 1 && version <= 3 ? Confidence.STRONG : Confidence.NONE;
        }
        // UML v1 headers are in host byte order: a little-endian host wrote magic and version reversed
        ByteBuffer le = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return le.getInt(p) == MAGIC && le.getInt(p + 4) == 1 ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        throw new UnsupportedFeatureException(storage.name(), "cow", "cow images cannot be opened yet "
                + "by this version of imago");
    }

    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        throw new UnsupportedFeatureException(storage.name(), "cow", "cow images cannot be created yet "
                + "by this version of imago");
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }
}
