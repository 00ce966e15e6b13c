package imago.cow.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * QEMU's cow header (version 2, big-endian), as QEMU 0.x–2.1 wrote it: {@code struct cow_header_v2}
 * is not packed, so its layout depends on the building compiler's alignment of the 64-bit size.
 *
 * @param bits32 whether this is the 32-bit x86 layout (size at 1036, 1048 bytes) rather than the
 *        x86-64 one (4 bytes of padding, size at 1040, 1056 bytes)
 * @param backingFile the backing file name, empty for none
 * @param mtime the backing file's mtime as recorded (unsigned 32 bits)
 * @param size the virtual size in bytes
 * @param sectorSize always 512
 */
record CowHeaderQemuV2(boolean bits32, String backingFile, long mtime, long size, int sectorSize)
        implements CowHeader {
    static final int VERSION = 2;
    static final int NAME_OFFSET = 8;
    static final int NAME_LENGTH = 1024;
    static final int MTIME_OFFSET = 1032;
    static final int LENGTH_64 = 1056;
    static final int LENGTH_32 = 1048;

    /** The size field's offset in the given layout. */
    static int sizeOffset(boolean bits32) {
        return bits32 ? 1036 : 1040;
    }

    /** The sector size field's offset in the given layout. */
    static int sectorSizeOffset(boolean bits32) {
        return bits32 ? 1044 : 1048;
    }

    /**
     * Parses {@code head} (absolute indices from 0) in the chosen layout. The caller checked magic and
     * version.
     *
     * @throws CorruptImageException if the header is too short or a field is invalid
     */
    static CowHeaderQemuV2 parse(ByteBuffer head, boolean bits32, String resource) throws CorruptImageException {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        int length = bits32 ? LENGTH_32 : LENGTH_64;
        if (b.limit() < length) {
            throw new CorruptImageException(resource, 0, "file is shorter than a " + length + "-byte QEMU cow header");
        }
        String name = CowFields.name(b, NAME_OFFSET, NAME_LENGTH, resource);
        long mtime = Integer.toUnsignedLong(b.getInt(MTIME_OFFSET));
        long size = CowFields.size(b, sizeOffset(bits32), resource);
        int ss = CowFields.fixedSectorSize(b, sectorSizeOffset(bits32), resource);
        CowHeaderQemuV2 h = new CowHeaderQemuV2(bits32, name, mtime, size, ss);
        CowFields.checkDataFits(h, resource, sizeOffset(bits32));
        return h;
    }

    @Override
    public CowVariant variant() {
        return bits32 ? CowVariant.QEMU_V2_32BIT : CowVariant.QEMU_V2;
    }

    @Override
    public int headerLength() {
        return bits32 ? LENGTH_32 : LENGTH_64;
    }

    @Override
    public long bitmapOffset() {
        return headerLength();
    }

    /** QEMU: {@code (sectors + 7) >> 3}. */
    @Override
    public long bitmapLength() {
        return CowFields.ceilDiv(sectors(), 8);
    }

    /** QEMU: the bitmap's end rounded up to a 512-byte sector. */
    @Override
    public long dataOffset() {
        return CowFields.roundUp(bitmapOffset() + bitmapLength(), CowFields.SECTOR);
    }

    @Override
    public void writeTo(ByteBuffer dst) {
        ByteBuffer b = dst.duplicate().order(ByteOrder.BIG_ENDIAN);
        b.put(0, new byte[headerLength()]);
        b.putInt(0, MAGIC).putInt(4, VERSION);
        CowFields.putName(b, NAME_OFFSET, NAME_LENGTH, backingFile);
        b.putInt(MTIME_OFFSET, (int) mtime);
        b.putLong(sizeOffset(bits32), size);
        b.putInt(sectorSizeOffset(bits32), sectorSize);
    }
}
