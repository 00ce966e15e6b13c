package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * UML's v2 cow header ({@code struct cow_header_v2}, big-endian, packed, 4120 bytes).
 *
 * @param backingFile the backing file name, empty for none
 * @param mtime the backing file's mtime (unsigned 32 bits)
 * @param size the virtual size in bytes
 * @param sectorSize bytes per bitmap bit
 */
record CowHeaderUmlV2(String backingFile, long mtime, long size, int sectorSize) implements CowHeader {
    static final int VERSION = 2;
    static final int NAME_OFFSET = 8;
    static final int NAME_LENGTH = 4096;
    static final int MTIME_OFFSET = 4104;
    static final int SIZE_OFFSET = 4108;
    static final int SECTOR_SIZE_OFFSET = 4116;
    static final int LENGTH = 4120;

    /**
     * Parses {@code head} (absolute indices from 0).
     *
     * @throws CorruptImageException if the header is too short or a field is invalid
     */
    static CowHeaderUmlV2 parse(ByteBuffer head, String resource) throws CorruptImageException {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (b.limit() < LENGTH) {
            throw new CorruptImageException(resource, 0, "file is shorter than a " + LENGTH + "-byte UML v2 cow header");
        }
        String name = CowFields.name(b, NAME_OFFSET, NAME_LENGTH, resource);
        long mtime = Integer.toUnsignedLong(b.getInt(MTIME_OFFSET));
        long size = CowFields.size(b, SIZE_OFFSET, resource);
        int ss = CowFields.umlSectorSize(b, SECTOR_SIZE_OFFSET, resource);
        CowHeaderUmlV2 h = new CowHeaderUmlV2(name, mtime, size, ss);
        CowFields.checkDataFits(h, resource, SIZE_OFFSET);
        return h;
    }

    @Override
    public CowVariant variant() {
        return CowVariant.UML_V2;
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
        ByteBuffer b = dst.duplicate().order(ByteOrder.BIG_ENDIAN);
        b.put(0, new byte[LENGTH]);
        b.putInt(0, MAGIC).putInt(4, VERSION);
        CowFields.putName(b, NAME_OFFSET, NAME_LENGTH, backingFile);
        b.putInt(MTIME_OFFSET, (int) mtime);
        b.putLong(SIZE_OFFSET, size);
        b.putInt(SECTOR_SIZE_OFFSET, sectorSize);
    }
}
