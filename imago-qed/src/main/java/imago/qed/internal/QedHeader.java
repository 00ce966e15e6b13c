package imago.qed.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import imago.api.spi.TwoLevelTable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The 64-byte QED header (little-endian), validated as QEMU 7.2's {@code bdrv_qed_do_open} validates it, with its
 * messages.
 *
 * @param clusterSize bytes per cluster: a power of two in [4 KiB, 64 MiB]
 * @param tableSize clusters per L1 or L2 table: a power of two in [1, 16]
 * @param headerSize clusters before the first table or data cluster
 * @param features incompatible feature bits ({@link #BACKING_FILE}, {@link #NEED_CHECK}, {@link #NO_PROBE})
 * @param compatFeatures compatible feature bits (none defined)
 * @param autoclearFeatures feature bits an older writer clears (none defined)
 * @param l1TableOffset byte offset of the L1 table
 * @param imageSize the virtual size in bytes
 * @param backingNameOffset byte offset of the backing file name (from the start of the file)
 * @param backingNameSize bytes of the backing file name
 */
record QedHeader(int clusterSize, int tableSize, int headerSize, long features, long compatFeatures,
        long autoclearFeatures, long l1TableOffset, long imageSize, int backingNameOffset, int backingNameSize) {
    /** "QED\0" read as a little-endian int. */
    static final int MAGIC = 0x0044_4551;
    static final int LENGTH = 64;
    /** The image has a backing file, named in the header cluster. */
    static final long BACKING_FILE = 1;
    /** The image was not closed cleanly: check it before writing. */
    static final long NEED_CHECK = 2;
    /** The backing file is raw: do not probe it. */
    static final long NO_PROBE = 4;
    static final long KNOWN_FEATURES = BACKING_FILE | NEED_CHECK | NO_PROBE;
    static final int MIN_CLUSTER = 4096;
    static final int MAX_CLUSTER = 64 << 20;
    static final int MAX_TABLE = 16;

    /** Offsets of the fields the driver rewrites. */
    static final int FEATURES_AT = 16;
    static final int AUTOCLEAR_AT = 32;
    static final int IMAGE_SIZE_AT = 48;

    /**
     * Parses and checks the header in the first {@link #LENGTH} bytes of {@code head} (fewer bytes, as past the end
     * of a short file, read as zero), for a file of {@code fileLength} bytes.
     *
     * @throws CorruptImageException if a field is invalid (QEMU's message, the field's offset)
     * @throws UnsupportedFeatureException if an unknown incompatible feature bit is set
     */
    static QedHeader parse(ByteBuffer head, long fileLength, String name)
            throws CorruptImageException, UnsupportedFeatureException {
        ByteBuffer b = ByteBuffer.allocate(LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer src = head.duplicate();
        src.limit(Math.min(src.limit(), src.position() + LENGTH));
        b.put(src).clear();
        if (b.getInt(0) != MAGIC) {
            throw new CorruptImageException(name, 0, "Image not in QED format");
        }
        QedHeader h = new QedHeader(b.getInt(4), b.getInt(8), b.getInt(12), b.getLong(16), b.getLong(24),
                b.getLong(32), b.getLong(40), b.getLong(48), b.getInt(56), b.getInt(60));
        if ((h.features & ~KNOWN_FEATURES) != 0) {
            throw new UnsupportedFeatureException(name, Feature.FORMAT_VERSION, "qed feature bits",
                    "Unsupported QED features: " + Long.toHexString(h.features & ~KNOWN_FEATURES));
        }
        if (!validClusterSize(h.clusterSize)) {
            throw new CorruptImageException(name, 4, "QED cluster size is invalid");
        }
        if (!validTableSize(h.tableSize)) {
            throw new CorruptImageException(name, 8, "QED table size is invalid");
        }
        if (!validImageSize(h.imageSize, h.clusterSize, h.tableSize)) {
            throw new CorruptImageException(name, IMAGE_SIZE_AT, "QED image size is invalid");
        }
        long fileSize = fileLength & -(long) h.clusterSize;
        if (!h.validTableOffset(h.l1TableOffset, fileSize)) {
            throw new CorruptImageException(name, 40, "QED table offset is invalid");
        }
        if (Integer.toUnsignedLong(h.headerSize) > 0xFFFF_FFFFL / h.clusterSize) {
            throw new CorruptImageException(name, 12, "QED header size is too large");
        }
        if (h.hasBacking() && Integer.toUnsignedLong(h.backingNameOffset)
                + Integer.toUnsignedLong(h.backingNameSize) > h.headerBytes()) {
            throw new CorruptImageException(name, 56, "QED backing filename offset is invalid");
        }
        return h;
    }

    static boolean validClusterSize(long size) {
        return size >= MIN_CLUSTER && size <= MAX_CLUSTER && Long.bitCount(size) == 1;
    }

    static boolean validTableSize(long size) {
        return size >= 1 && size <= MAX_TABLE && Long.bitCount(size) == 1;
    }

    /** QEMU's largest image: L1 entries times L2 entries times the cluster size. */
    static long maxImageSize(int clusterSize, int tableSize) {
        long entries = (long) tableSize * clusterSize / 8;
        return Math.multiplyHigh(entries * clusterSize, entries) != 0 ? Long.MAX_VALUE
                : entries * clusterSize * entries;
    }

    static boolean validImageSize(long size, int clusterSize, int tableSize) {
        return Long.compareUnsigned(size, maxImageSize(clusterSize, tableSize)) <= 0 && size % 512 == 0;
    }

    /** Entries per table. */
    int tableEntries() {
        return (int) ((long) tableSize * clusterSize / 8);
    }

    long tableBytes() {
        return (long) tableSize * clusterSize;
    }

    long headerBytes() {
        return Integer.toUnsignedLong(headerSize) * clusterSize;
    }

    boolean hasBacking() {
        return (features & BACKING_FILE) != 0;
    }

    boolean needsCheck() {
        return (features & NEED_CHECK) != 0;
    }

    /** QEMU's qed_check_cluster_offset: cluster-aligned, past the header, before the end of the file. */
    boolean validClusterOffset(long offset, long fileSize) {
        return (offset & (clusterSize - 1)) == 0 && Long.compareUnsigned(offset, headerBytes()) >= 0
                && Long.compareUnsigned(offset, fileSize) < 0;
    }

    /**
     * QEMU's qed_check_table_offset: the first and last cluster of the table are valid cluster offsets. Its overflow
     * test also refuses every offset when a table is one cluster long, so QEMU opens no image with
     * {@code table_size=1}; imago keeps that.
     */
    boolean validTableOffset(long offset, long fileSize) {
        long end = offset + (long) (tableSize - 1) * clusterSize;
        if (Long.compareUnsigned(end, offset) <= 0) {
            return false;
        }
        return validClusterOffset(offset, fileSize) && validClusterOffset(end, fileSize);
    }

    QedHeader withFeatures(long newFeatures) {
        return new QedHeader(clusterSize, tableSize, headerSize, newFeatures, compatFeatures, autoclearFeatures,
                l1TableOffset, imageSize, backingNameOffset, backingNameSize);
    }

    QedHeader withAutoclear(long newAutoclear) {
        return new QedHeader(clusterSize, tableSize, headerSize, features, compatFeatures, newAutoclear,
                l1TableOffset, imageSize, backingNameOffset, backingNameSize);
    }

    /** This header naming a backing file: the feature bits, and where the name is in the header clusters. */
    QedHeader withBacking(long newFeatures, int nameOffset, int nameSize) {
        return new QedHeader(clusterSize, tableSize, headerSize, newFeatures, compatFeatures, autoclearFeatures,
                l1TableOffset, imageSize, nameOffset, nameSize);
    }

    QedHeader withImageSize(long newSize) {
        return new QedHeader(clusterSize, tableSize, headerSize, features, compatFeatures, autoclearFeatures,
                l1TableOffset, newSize, backingNameOffset, backingNameSize);
    }

    /** The 64 header bytes. */
    ByteBuffer toBytes() {
        ByteBuffer b = ByteBuffer.allocate(LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).putInt(clusterSize).putInt(tableSize).putInt(headerSize).putLong(features)
                .putLong(compatFeatures).putLong(autoclearFeatures).putLong(l1TableOffset).putLong(imageSize)
                .putInt(backingNameOffset).putInt(backingNameSize);
        return b.flip();
    }

    /**
     * Reads the L1 table this header names (checked by the header to lie inside the file), each L1 entry checked when
     * used to name a valid L2 table offset; at most {@code maxCached} L2 tables are cached.
     */
    TwoLevelTable loadTables(Storage storage, int maxCached) throws IOException {
        return TwoLevelTable.load(storage, ByteOrder.LITTLE_ENDIAN, l1TableOffset(), tableEntries(), tableEntries(),
                maxCached, (offset, index, fileSize) -> {
                    if (!validTableOffset(offset, fileSize)) {
                        // QEMU's qed_find_cluster: -EINVAL
                        throw CorruptImageException.invalidArgument(storage.name(), l1TableOffset() + 8L * index,
                                "L1 entry "
                                + index + " names an L2 table at offset " + offset + " that is not a valid table offset");
                    }
                });
    }
}
