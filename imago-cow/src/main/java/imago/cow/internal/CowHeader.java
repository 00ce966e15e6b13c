package imago.cow.internal;

import java.nio.ByteBuffer;

/**
 * A parsed cow header of one variant, and the layout it implies: where the bitmap and the data start.
 * The records validate their own fields when parsing; {@link CowHeaders#detect} decides the variant.
 */
sealed interface CowHeader permits CowHeaderQemuV2, CowHeaderUmlV1, CowHeaderUmlV2, CowHeaderUmlV3 {

    /** "MOOO" read big-endian. */
    int MAGIC = 0x4F4F4F4D;

    /** Which variant this is. */
    CowVariant variant();

    /** The backing file name, empty for none. */
    String backingFile();

    /** The backing file's modification time (seconds) as recorded. */
    long mtime();

    /** The virtual size in bytes. */
    long size();

    /** Bytes per bitmap bit. */
    int sectorSize();

    /** The size of the header struct on disk. */
    int headerLength();

    /** Where the bitmap starts. */
    long bitmapOffset();

    /** The bitmap's length as the variant's own tools compute it. */
    long bitmapLength();

    /** Where sector 0's data starts. */
    long dataOffset();

    /** Writes the header to {@code dst} from index 0 ({@link #headerLength()} bytes, absolute). */
    void writeTo(ByteBuffer dst);

    /** The number of sectors, the last one possibly partial. */
    default long sectors() {
        return CowFields.ceilDiv(size(), sectorSize());
    }
}
