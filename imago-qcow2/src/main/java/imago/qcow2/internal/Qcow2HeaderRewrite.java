package imago.qcow2.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Cluster 0 written anew with changed header extensions and feature bits, in one write followed by a sync, laid out
 * as QEMU's qcow2_update_header lays it out ({@link Qcow2Header#withBacking}): the switch by which a new bitmap
 * directory takes effect.
 */
final class Qcow2HeaderRewrite {
    private final Qcow2Header header;
    private final List<Qcow2Extension> extensions;
    private long autoclear;

    private Qcow2HeaderRewrite(Qcow2Header header) {
        this.header = header;
        this.extensions = new ArrayList<>(header.extensions());
        this.autoclear = header.autoclearFeatures();
    }

    /** Sets the extension of {@code type} to {@code data}, or drops it when {@code data} is null. */
    Qcow2HeaderRewrite withExtension(int type, byte[] data) {
        int at = -1;
        for (int i = 0; i < extensions.size(); i++) {
            if (extensions.get(i).type() == type) {
                at = i;
                break;
            }
        }
        extensions.removeIf(e -> e.type() == type);
        if (data != null) {
            extensions.add(at < 0 ? extensions.size() : at, new Qcow2Extension(type, -1, data));
        }
        return this;
    }

    /** Sets the autoclear feature bits (qcow2 v3). */
    Qcow2HeaderRewrite withAutoclear(long features) {
        this.autoclear = features;
        return this;
    }

    /**
     * Reads and parses cluster 0, applies {@code edit}, writes it back in one write and syncs.
     *
     * @return the header as it is now on the disk
     */
    static Qcow2Header rewrite(Storage storage, int clusterSize, UnaryOperator<Qcow2HeaderRewrite> edit)
            throws IOException {
        String resource = storage.name();
        ByteBuffer cluster0 = ByteBuffer.allocate(clusterSize);
        storage.read(cluster0, 0);
        Qcow2Header old = Qcow2Header.parse(cluster0.duplicate().clear(), resource, storage.size());
        Qcow2HeaderRewrite r = edit.apply(new Qcow2HeaderRewrite(old));
        Qcow2Header h = r.header;
        Qcow2Header edited = new Qcow2Header(h.version(), h.backingFileOffset(), h.backingFileSize(),
                h.clusterBits(), h.size(), h.cryptMethod(), h.l1Size(), h.l1TableOffset(), h.refcountTableOffset(),
                h.refcountTableClusters(), h.nbSnapshots(), h.snapshotsOffset(), h.incompatibleFeatures(),
                h.compatibleFeatures(), r.autoclear, h.refcountOrder(), h.headerLength(), h.compressionType(),
                List.copyOf(r.extensions), h.backingFile(), h.backingFormat(), h.dataFile());
        byte[] bytes = edited.withBacking(cluster0.array(), resource, h.backingFile().orElse(null),
                h.backingFormat().orElse(null));
        if (h.version() >= 3) {
            ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN).putLong(88, r.autoclear);
        }
        Qcow2Header parsed = Qcow2Header.parse(ByteBuffer.wrap(bytes), resource, storage.size());
        storage.write(ByteBuffer.wrap(bytes), 0);
        storage.flush();
        storage.sync();
        return parsed;
    }
}
