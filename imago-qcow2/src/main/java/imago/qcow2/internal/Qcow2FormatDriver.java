package imago.qcow2.internal;

import imago.api.CreateOptions;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Set;

/** The qcow2 driver: recognises images by magic and version and opens, writes and creates them. */
public final class Qcow2FormatDriver implements FormatDriver {
    /** "QFI\xfb". */
    static final int MAGIC = 0x514649FB;

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public Qcow2FormatDriver() {
    }

    @Override
    public String name() {
        return "qcow2";
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
        ByteBuffer be = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        int p = be.position();
        // QEMU accepts any version >= 2 when probing and rejects unknown ones when opening
        return be.getInt(p) == MAGIC && be.getInt(p + 4) >= 2 ? Confidence.STRONG : Confidence.NONE;
    }

    @Override
    public FormatInstance open(Storage storage, OpenContext context) throws IOException {
        return Qcow2Instance.open(storage, context);
    }

    @Override
    public void create(Storage storage, CreateOptions options) throws IOException {
        Qcow2Create.create(storage, options);
    }

    @Override
    public Set<String> createOptionNames() {
        return Qcow2Create.OPTION_NAMES;
    }

    @Override
    public boolean supportsBacking() {
        return true;
    }
}
