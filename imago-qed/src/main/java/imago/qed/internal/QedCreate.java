package imago.qed.internal;

import imago.api.CreateOptions;
import imago.api.spi.CreateChecks;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Writes a new QED image as qemu-img 7.2 does: the header in cluster 0 (the backing file name right after its 64
 * bytes), then an empty L1 table of {@code table_size} clusters; nothing else. The size is rounded up to 512 bytes
 * first, as qemu-img rounds it.
 */
final class QedCreate {
    static final String CLUSTER_SIZE = "cluster_size";
    static final String TABLE_SIZE = "table_size";
    static final int DEFAULT_CLUSTER = 64 << 10;
    static final int DEFAULT_TABLE = 4;

    private QedCreate() {
    }

    static void create(Storage storage, CreateOptions options) throws IOException {
        Map<String, String> o = options.formatOptions();
        for (String key : o.keySet()) {
            if (!key.equals(CLUSTER_SIZE) && !key.equals(TABLE_SIZE)) {
                throw new IllegalArgumentException("Invalid parameter '" + key + "' for format qed (known: "
                        + "cluster_size, table_size)");
            }
        }
        CreateChecks.fileLayerPreallocation(options);
        long clusterSize = size(CLUSTER_SIZE, o.get(CLUSTER_SIZE), DEFAULT_CLUSTER);
        long tableSize = size(TABLE_SIZE, o.get(TABLE_SIZE), DEFAULT_TABLE);
        if (!QedHeader.validClusterSize(clusterSize)) {
            throw new IllegalArgumentException("QED cluster size must be within range [" + QedHeader.MIN_CLUSTER
                    + ", " + QedHeader.MAX_CLUSTER + "] and power of 2");
        }
        if (!QedHeader.validTableSize(tableSize)) {
            throw new IllegalArgumentException("QED table size must be within range [1, " + QedHeader.MAX_TABLE
                    + "] and power of 2");
        }
        long requested = options.size().orElseThrow(() -> new IllegalArgumentException(
                "Image creation needs a size parameter"));
        long size = requested + 511 & -512L;
        if (requested < 0 || size < 0 || !QedHeader.validImageSize(size, (int) clusterSize, (int) tableSize)) {
            throw new IllegalArgumentException("QED image size must be a non-zero multiple of cluster size and less "
                    + "than " + QedHeader.maxImageSize((int) clusterSize, (int) tableSize) + " bytes");
        }
        long features = 0;
        byte[] backing = new byte[0];
        if (options.backingFile().isPresent()) {
            backing = options.backingFile().get().getBytes(StandardCharsets.UTF_8);
            if (QedHeader.LENGTH + backing.length > clusterSize) {
                throw new IllegalArgumentException("Backing file name too long for the QED header cluster ("
                        + backing.length + " bytes, at most " + (clusterSize - QedHeader.LENGTH) + ")");
            }
            features |= QedHeader.BACKING_FILE;
            if (options.backingFormat().filter("raw"::equals).isPresent()) {
                features |= QedHeader.NO_PROBE;
            }
        }
        QedHeader header = new QedHeader((int) clusterSize, (int) tableSize, 1, features, 0, 0, clusterSize, size,
                backing.length == 0 && features == 0 ? 0 : QedHeader.LENGTH, backing.length);
        storage.write(header.toBytes(), 0);
        if (backing.length > 0) {
            storage.write(ByteBuffer.wrap(backing), QedHeader.LENGTH);
        }
        storage.writeZeroes(clusterSize, clusterSize * tableSize, false);
        if (storage.size() < clusterSize * (tableSize + 1)) {
            storage.write(ByteBuffer.allocate(1), clusterSize * (tableSize + 1) - 1);
        }
    }

    /** A size option as QEMU reads it: bytes, or a number with a binary suffix up to {@code E}, either case. */
    static long size(String key, String value, long fallback) {
        return value == null ? fallback : CreateChecks.sizeOption(key, value, 'e', Long.MAX_VALUE, false);
    }
}
