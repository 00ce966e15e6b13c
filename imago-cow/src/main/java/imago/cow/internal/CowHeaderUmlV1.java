package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * UML's first cow header ({@code struct cow_header_v1}, packed, 280 bytes), in the byte order of the
 * host that wrote it.
 *
 * @param order the writing host's byte order (the magic tells)
 * @param backingFile the backing file name, empty for none
 * @param mtime the backing file's mtime (unsigned 32 bits)
 * @param size the virtual size in bytes
 * @param sectorSize bytes per bitmap bit
 */
record CowHeaderUmlV1(ByteOrder order, String backingFile, long mtime, long size, int sectorSize)
        implements CowHeader {
    static final int VERSION = 1;
    static final int NAME_OFFSET = 8;
    static final int NAME_LENGTH = 256;
    static final int MTIME_OFFSET = 264;
    static final int SIZE_OFFSET = 268;
    static final int SECTOR_SIZE_OFFSET = 276;
    static final int LENGTH = 280;

    /**
     * Parses {@code head} (absolute indices from 0) in byte order {@code order}.
     *
     * @throws CorruptImageException if the header is too short or a field is invalid
     */
    static CowHeaderUmlV1 parse(ByteBuffer head, ByteOrder order, String resource) throws CorruptImageException {
        ByteBuffer b = head.duplicate().order(order);
        if (b.limit() < LENGTH) {
            throw new CorruptImageException(resource, 0, "file is shorter than a " + LENGTH + "-byte UML v1 cow header");
        }
        String name = CowFields.name(b, NAME_OFFSET, NAME_LENGTH, resource);
        long mtime = Integer.toUnsignedLong(b.getInt(MTIME_OFFSET));
        long size = CowFields.size(b, SIZE_OFFSET, resource);
        int ss = CowFields.umlSectorSize(b, SECTOR_SIZE_OFFSET, resource);
        CowHeaderUmlV1 h = new CowHeaderUmlV1(order, name, mtime, size, ss);
        CowFields.checkDataFits(h, resource, SIZE_OFFSET);
        return h;
    }

    @Override
    public CowVariant variant() {
        return CowVariant.UML_V1;
    }

    @Override
    public int headerLength() {
        return LENGTH;
    }

    @Override
    public long bitmapOffset() {
        return LENGTH;
    }

    /** UML's {@code (size + ss - 1) / (8 * ss)}: one byte short when the sector count is not a multiple of 8. */
    @Override
    public long bitmapLength() {
        return sectors() / 8;
    }

    @Override
    public long dataOffset() {
        return CowFields.roundUp(bitmapOffset() + bitmapLength(), sectorSize);
    }

    @Override
    public void writeTo(ByteBuffer dst) {
        ByteBuffer b = dst.duplicate().order(order);
        b.put(0, new byte[LENGTH]);
        b.putInt(0, MAGIC).putInt(4, VERSION);
        CowFields.putName(b, NAME_OFFSET, NAME_LENGTH, backingFile);
        b.putInt(MTIME_OFFSET, (int) mtime);
        b.putLong(SIZE_OFFSET, size);
        b.putInt(SECTOR_SIZE_OFFSET, sectorSize);
    }
}
