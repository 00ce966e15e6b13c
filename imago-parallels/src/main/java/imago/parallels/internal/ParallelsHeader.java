package imago.parallels.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The 64-byte Parallels header (layout in the package documentation), little-endian.
 *
 * @param extended whether the magic is "WithouFreSpacExt" (catalog entries count clusters) rather than
 *        "WithoutFreeSpace" (entries count sectors)
 * @param tracks sectors per cluster
 * @param batEntries the catalog's entries
 * @param sectors the virtual size in sectors (the low 32 bits only with the old magic, as QEMU reads it)
 * @param inUse whether the in-use mark is set (the image was not closed cleanly)
 * @param dataOff the first data sector (0: right after the catalog)
 * @param extOff the format extension cluster's sector, 0 if none
 */
record ParallelsHeader(boolean extended, long tracks, long batEntries, long sectors, boolean inUse, long dataOff,
        long extOff) {
    static final int LENGTH = 64;
    static final int SECTOR = 512;
    static final int VERSION = 2;
    static final int IN_USE = 0x746F6E59;
    static final int IN_USE_AT = 44;
    static final byte[] MAGIC = "WithoutFreeSpace".getBytes(StandardCharsets.US_ASCII);
    static final byte[] MAGIC_EXT = "WithouFreSpacExt".getBytes(StandardCharsets.US_ASCII);
    /** QEMU's geometry for new images: 16 heads, 32 sectors per track. */
    static final int HEADS = 16;
    static final int SECTORS_PER_CYLINDER = 32;

    /**
     * Parses and validates a header with QEMU 7.2's checks and messages.
     *
     * @throws CorruptImageException if it is not a Parallels header or has no sectors per cluster
     * @throws ImageLimitException if clusters, the catalog or the size are larger than QEMU or imago allow
     */
    static ParallelsHeader parse(ByteBuffer head, String name) throws CorruptImageException, ImageLimitException {
        if (head.remaining() < LENGTH) {
            throw new CorruptImageException(name, head.remaining(), "Image not in Parallels format (the file has "
                    + head.remaining() + " bytes, a header " + LENGTH + ")");
        }
        ByteBuffer b = head.slice(head.position(), LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[16];
        b.get(0, magic);
        boolean extended = Arrays.equals(magic, MAGIC_EXT);
        if (b.getInt(16) != VERSION || !extended && !Arrays.equals(magic, MAGIC)) {
            throw new CorruptImageException(name, b.getInt(16) != VERSION ? 16 : 0, "Image not in Parallels format");
        }
        long tracks = Integer.toUnsignedLong(b.getInt(28));
        if (tracks == 0) {
            throw new CorruptImageException(name, 28, "Invalid image: Zero sectors per track");
        }
        if (tracks > Integer.MAX_VALUE / 513) {
            throw new ImageLimitException(name, 28, "Invalid image: Too big cluster (" + tracks + " sectors)");
        }
        long batEntries = Integer.toUnsignedLong(b.getInt(32));
        if (batEntries > Integer.MAX_VALUE / 4) {
            throw new ImageLimitException(name, 32, "Catalog too large (" + batEntries + " entries)");
        }
        long sectors = b.getLong(36);
        if (!extended) {
            sectors &= 0xFFFF_FFFFL;
        }
        if (sectors < 0 || sectors > Long.MAX_VALUE / SECTOR / 2) {
            throw new ImageLimitException(name, 36, "Image size is too large (" + Long.toUnsignedString(sectors)
                    + " sectors)");
        }
        return new ParallelsHeader(extended, tracks, batEntries, sectors, b.getInt(IN_USE_AT) == IN_USE,
                Integer.toUnsignedLong(b.getInt(48)), b.getLong(56));
    }

    /** Bytes per cluster. */
    long clusterSize() {
        return tracks * SECTOR;
    }

    /** Bytes of the header and catalog. */
    long tableEnd() {
        return LENGTH + batEntries * 4;
    }

    /** What a catalog entry counts: clusters with the extended magic, sectors with the old one. */
    long entryUnit() {
        return extended ? clusterSize() : SECTOR;
    }

    /** A new header as qemu-img 7.2 writes it (extended magic, QEMU's geometry, the data after the catalog). */
    static ByteBuffer create(long size, long clusterSize, long batEntries, long dataSectors) {
        ByteBuffer b = ByteBuffer.allocate(LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, MAGIC_EXT);
        b.putInt(16, VERSION).putInt(20, HEADS).putInt(24, (int) (size / SECTOR / HEADS / SECTORS_PER_CYLINDER))
                .putInt(28, (int) (clusterSize / SECTOR)).putInt(32, (int) batEntries)
                .putLong(36, (size + SECTOR - 1) / SECTOR).putInt(48, (int) dataSectors);
        return b;
    }
}
