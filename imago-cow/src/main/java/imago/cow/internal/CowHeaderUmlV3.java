package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * UML's v3 cow header, big-endian: {@code struct cow_header_v3} (packed, 4128 bytes) or, when
 * {@code broken}, {@code struct cow_header_v3_broken} as old 64-bit builds wrote it (unpacked, 4136
 * bytes, an 8-byte mtime field holding a big-endian 32-bit value in its first four bytes).
 *
 * @param broken whether this is the "v3 broken" layout
 * @param backingFile the backing file name, empty for none
 * @param mtime the backing file's mtime (unsigned 32 bits)
 * @param size the virtual size in bytes
 * @param sectorSize bytes per bitmap bit
 * @param alignment the bitmap and data alignment, a power of two
 */
record CowHeaderUmlV3(boolean broken, String backingFile, long mtime, long size, int sectorSize, int alignment)
        implements CowHeader {
    static final int VERSION = 3;
    static final int MTIME_OFFSET = 8;
    static final int NAME_LENGTH = 4096;
    static final int LENGTH = 4128;
    static final int LENGTH_BROKEN = 4136;

    static int sizeOffset(boolean broken) {
        return broken ? 16 : 12;
    }

    static int sectorSizeOffset(boolean broken) {
        return broken ? 24 : 20;
    }

    static int alignmentOffset(boolean broken) {
        return broken ? 28 : 24;
    }

    static int formatOffset(boolean broken) {
        return broken ? 32 : 28;
    }

    static int nameOffset(boolean broken) {
        return broken ? 36 : 32;
    }

    /**
     * Parses {@code head} (absolute indices from 0) in the chosen layout.
     *
     * @throws CorruptImageException if the header is too short or a field is invalid
     */
    static CowHeaderUmlV3 parse(ByteBuffer head, boolean broken, String resource) throws CorruptImageException {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        int length = broken ? LENGTH_BROKEN : LENGTH;
        if (b.limit() < length) {
            throw new CorruptImageException(resource, 0, "file is shorter than a " + length
                    + "-byte UML v3 cow header");
        }
        long mtime = Integer.toUnsignedLong(b.getInt(MTIME_OFFSET));
        long size = CowFields.size(b, sizeOffset(broken), resource);
        int ss = CowFields.umlSectorSize(b, sectorSizeOffset(broken), resource);
        int alignment = CowFields.alignment(b, alignmentOffset(broken), resource);
        int format = b.getInt(formatOffset(broken));
        if (format != 0) {
            throw new CorruptImageException(resource, formatOffset(broken), "cow_format "
                    + Integer.toUnsignedString(format) + " is unknown (0, a bitmap, is the only format)");
        }
        String name = CowFields.name(b, nameOffset(broken), NAME_LENGTH, resource);
        CowHeaderUmlV3 h = new CowHeaderUmlV3(broken, name, mtime, size, ss, alignment);
        CowFields.checkDataFits(h, resource, sizeOffset(broken));
        return h;
    }

    @Override
    public CowVariant variant() {
        return broken ? CowVariant.UML_V3_BROKEN : CowVariant.UML_V3;
    }

    @Override
    public int headerLength() {
        return broken ? LENGTH_BROKEN : LENGTH;
    }

    /** The header's size rounded up to the alignment. */
    @Override
    public long bitmapOffset() {
        return CowFields.roundUp(headerLength(), alignment);
    }

    /** One bit per sector, rounded up to whole bytes. */
    @Override
    public long bitmapLength() {
        return CowFields.ceilDiv(sectors(), 8);
    }

    /** The bitmap's end rounded up to the alignment. */
    @Override
    public long dataOffset() {
        return CowFields.roundUp(bitmapOffset() + bitmapLength(), alignment);
    }

    @Override
    public void writeTo(ByteBuffer dst) {
        ByteBuffer b = dst.duplicate().order(ByteOrder.BIG_ENDIAN);
        b.put(0, new byte[headerLength()]);
        b.putInt(0, MAGIC).putInt(4, VERSION);
        b.putInt(MTIME_OFFSET, (int) mtime);
        b.putLong(sizeOffset(broken), size);
        b.putInt(sectorSizeOffset(broken), sectorSize);
        b.putInt(alignmentOffset(broken), alignment);
        b.putInt(formatOffset(broken), 0);
        CowFields.putName(b, nameOffset(broken), NAME_LENGTH, backingFile);
    }
}
