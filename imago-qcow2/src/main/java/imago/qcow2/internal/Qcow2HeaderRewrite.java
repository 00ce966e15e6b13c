package imago.qcow2.internal;

import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Cluster 0 written anew with changed header extensions, feature bits or version, in one write followed by a sync,
 * laid out as QEMU's qcow2_update_header lays it out ({@link Qcow2Header#withBacking}): the switch by which a new
 * bitmap directory or an amended header takes effect. Only the sectors the old or the new header uses are written,
 * usually the first alone, so that a power loss leaves the old header or the new one.
 */
final class Qcow2HeaderRewrite {
    private final Qcow2Header header;
    private final List<Qcow2Extension> extensions;
    private long autoclear;
    private long compatible;
    private int version;

    private Qcow2HeaderRewrite(Qcow2Header header) {
        this.header = header;
        this.extensions = new ArrayList<>(header.extensions());
        this.autoclear = header.autoclearFeatures();
        this.compatible = header.compatibleFeatures();
        this.version = header.version();
    }

    /** The header as it is before the rewrite. */
    Qcow2Header header() {
        return header;
    }

    /** Sets the compatible feature bits (qcow2 v3). */
    Qcow2HeaderRewrite withCompatible(long features) {
        this.compatible = features;
        return this;
    }

    /**
     * Makes the image version {@code v}, as QEMU's amend does: v2 has a 72-byte header without feature bits, feature
     * names or bitmaps; v3 gets QEMU's 112-byte header with no feature bit set, 16-bit refcounts, zlib, and the
     * feature-name table.
     */
    Qcow2HeaderRewrite withVersion(int v) {
        if (v == version) {
            return this;
        }
        version = v;
        autoclear = 0;
        compatible = 0;
        if (v == 2) {
            withExtension(Qcow2Header.EXT_FEATURE_NAMES, null);
            withExtension(Qcow2Header.EXT_BITMAPS, null);
        } else if (header.clusterSize() > 4096) {
            withExtension(Qcow2Header.EXT_FEATURE_NAMES, Qcow2Extension.featureTable());
        }
        return this;
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

    /** The index of the last byte that is not zero (-1 for none). */
    private static int lastUsed(byte[] b) {
        for (int i = b.length - 1; i >= 0; i--) {
            if (b[i] != 0) {
                return i;
            }
        }
        return -1;
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
        Qcow2Header old = Qcow2Header.parse(cluster0.duplicate().clear(), resource, storage.size(), false, true);
        Qcow2HeaderRewrite r = edit.apply(new Qcow2HeaderRewrite(old));
        Qcow2Header h = r.header;
        byte[] fixed = cluster0.array().clone();
        int headerLength = h.headerLength();
        if (r.version != h.version()) {
            // the fields past v2's 72 bytes: QEMU's v3 defaults, or nothing at all for v2
            headerLength = r.version == 2 ? Qcow2Header.V2_HEADER_LENGTH : 112;
            ByteBuffer f = ByteBuffer.wrap(fixed).order(ByteOrder.BIG_ENDIAN);
            f.putInt(4, r.version);
            java.util.Arrays.fill(fixed, Qcow2Header.V2_HEADER_LENGTH, 112, (byte) 0);
            if (r.version >= 3) {
                f.putInt(96, 4).putInt(100, 112);
            }
        }
        Qcow2Header edited = new Qcow2Header(r.version, h.backingFileOffset(), h.backingFileSize(),
                h.clusterBits(), h.size(), h.cryptMethod(), h.l1Size(), h.l1TableOffset(), h.refcountTableOffset(),
                h.refcountTableClusters(), h.nbSnapshots(), h.snapshotsOffset(), h.incompatibleFeatures(),
                r.compatible, r.autoclear, h.refcountOrder(), headerLength, h.compressionType(),
                List.copyOf(r.extensions), h.backingFile(), h.backingFormat(), h.dataFile());
        byte[] bytes = edited.withBacking(fixed, resource, h.backingFile().orElse(null),
                h.backingFormat().orElse(null));
        if (r.version >= 3) {
            ByteBuffer.wrap(bytes).order(ByteOrder.BIG_ENDIAN).putLong(80, r.compatible).putLong(88, r.autoclear);
        }
        Qcow2Header parsed = Qcow2Header.parse(ByteBuffer.wrap(bytes), resource, storage.size(), false, true);
        // only the sectors either version uses: usually the first alone, which a power loss cannot tear
        int used = Math.max(lastUsed(cluster0.array()), lastUsed(bytes));
        storage.write(ByteBuffer.wrap(bytes, 0, Math.min(bytes.length, (used + 512) & ~511)), 0);
        storage.flush();
        storage.sync();
        return parsed;
    }
}
