package imago.bochs.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A validated bochs header (see the package documentation for the layout).
 *
 * @param version {@link #VERSION_1} or {@link #VERSION_2}
 * @param catalogOffset where the catalog starts (the header's size field)
 * @param catalogEntries how many extents the catalog holds
 * @param bitmapBytes the bitmap size of each block, in bytes
 * @param extentBytes the extent size, in bytes (a power of two)
 * @param size the virtual size: the disk size's whole sectors, in bytes
 */
record BochsHeader(int version, long catalogOffset, int catalogEntries, long bitmapBytes, int extentBytes, long size) {
    /** The header's length, and the sector size. */
    static final int SECTOR = 512;
    static final int VERSION_1 = 0x0001_0000;
    static final int VERSION_2 = 0x0002_0000;
    /** QEMU's bound: what bximage needs for its largest image (~8 TB). */
    static final int MAX_CATALOG = 0x10_0000;
    static final int MAX_EXTENT = 0x80_0000;
    static final long UNALLOCATED = 0xFFFF_FFFFL;

    private static final byte[] MAGIC = "Bochs Virtual HD Image".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] REDOLOG = "Redolog".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] GROWING = "Growing".getBytes(StandardCharsets.US_ASCII);

    /** Whether {@code head} starts with a header QEMU's probe accepts: the three strings and a known version. */
    static boolean recognised(ByteBuffer head) {
        if (head.remaining() < SECTOR) {
            return false;
        }
        ByteBuffer b = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int base = b.position();
        int version = b.getInt(base + 64);
        return cString(b, base, 32, MAGIC) && cString(b, base + 32, 16, REDOLOG) && cString(b, base + 48, 16, GROWING)
                && (version == VERSION_1 || version == VERSION_2);
    }

    /**
     * Parses and checks the first 512 bytes of {@code resource}, whose file is {@code fileSize} bytes long.
     *
     * @throws CorruptImageException for a header that is not bochs or does not fit the file
     * @throws ImageLimitException for a catalog larger than QEMU reads
     */
    static BochsHeader parse(String resource, ByteBuffer head, long fileSize)
            throws CorruptImageException, ImageLimitException {
        if (!recognised(head)) {
            throw new CorruptImageException(resource, 0, "Image not in Bochs format");
        }
        ByteBuffer b = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int base = b.position();
        int version = b.getInt(base + 64);
        long catalogOffset = Integer.toUnsignedLong(b.getInt(base + 68));
        long catalog = Integer.toUnsignedLong(b.getInt(base + 72));
        long bitmap = Integer.toUnsignedLong(b.getInt(base + 76));
        long extent = Integer.toUnsignedLong(b.getInt(base + 80));
        long disk = b.getLong(base + (version == VERSION_1 ? 84 : 88));
        if (catalog > MAX_CATALOG) {
            throw new ImageLimitException(resource, "Catalog size is too large");
        }
        if (extent < SECTOR) {
            throw new CorruptImageException(resource, 80, "Extent size must be at least 512");
        }
        if (Long.bitCount(extent) != 1) {
            throw new CorruptImageException(resource, 80, "Extent size " + extent + " is not a power of two");
        }
        if (extent > MAX_EXTENT) {
            throw new CorruptImageException(resource, 80, "Extent size " + extent + " is too large");
        }
        long sectors = Long.divideUnsigned(disk, SECTOR);
        long sectorsPerExtent = extent / SECTOR;
        // unsigned: a disk size past 2^63 needs more extents than any catalog holds
        if (Long.compareUnsigned(sectors, catalog * sectorsPerExtent) > 0) {
            throw new CorruptImageException(resource, 72, "Catalog size is too small for this disk size");
        }
        if (bitmap * 8 < sectorsPerExtent) {
            throw new CorruptImageException(resource, 76, "bitmap of " + bitmap + " bytes cannot cover an extent of "
                    + sectorsPerExtent + " sectors");
        }
        if (catalogOffset + catalog * 4 > fileSize) {
            throw new CorruptImageException(resource, catalogOffset, "the catalog of " + catalog
                    + " entries ends past the end of the file (" + fileSize + " bytes)");
        }
        return new BochsHeader(version, catalogOffset, (int) catalog, bitmap, (int) extent, sectors * SECTOR);
    }

    /** Where the blocks start: right after the catalog. */
    long dataOffset() {
        return catalogOffset + 4L * catalogEntries;
    }

    /** The bytes of one block: the bitmap and the extent, each rounded up to whole sectors. */
    long blockBytes() {
        return (Math.ceilDiv(bitmapBytes, SECTOR) + extentBytes / SECTOR) * SECTOR;
    }

    /** The bitmap's length in whole sectors, in bytes: where a block's sectors start. */
    long bitmapSpan() {
        return Math.ceilDiv(bitmapBytes, SECTOR) * SECTOR;
    }

    /** Whether {@code length} bytes at {@code offset} hold {@code text} followed by a NUL (C's strcmp). */
    private static boolean cString(ByteBuffer b, int offset, int length, byte[] text) {
        if (text.length >= length || b.get(offset + text.length) != 0) {
            return false;
        }
        for (int i = 0; i < text.length; i++) {
            if (b.get(offset + i) != text[i]) {
                return false;
            }
        }
        return true;
    }
}
