package imago.vpc.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.util.Set;
import java.util.UUID;

/**
 * The hard disk footer (see the package documentation for its layout).
 *
 * @param features the features field (bit 1 is always set)
 * @param formatVersion the file format version
 * @param dataOffset the dynamic header's offset, or -1 (all ones) for a fixed disk
 * @param timestamp seconds since 2000-01-01 UTC, unsigned
 * @param creatorApp the creator application's four characters
 * @param creatorVersion the creator's version
 * @param creatorOs the creator host OS's four characters
 * @param originalSize the size at creation
 * @param currentSize the current size
 * @param geometry the CHS geometry
 * @param diskType 2 fixed, 3 dynamic, 4 differencing
 * @param uniqueId the disk's UUID
 * @param savedState whether the disk is in a saved state
 */
record VpcFooter(int features, int formatVersion, long dataOffset, long timestamp, String creatorApp,
        int creatorVersion, String creatorOs, long originalSize, long currentSize, VpcGeometry geometry,
        int diskType, UUID uniqueId, boolean savedState) {

    /** Creator applications whose images QEMU sizes by the current size rather than the geometry. */
    private static final Set<String> CURRENT_SIZE_CREATORS = Set.of("win ", "qem2", "d2v ", "CTXS", "tap\0");

    /** How the virtual size is chosen ({@code force_size_calc}). */
    enum SizeCalc {
        /** By the creator application (QEMU's table). */
        AUTO,
        /** By the geometry, except at the largest geometry. */
        CHS,
        /** By the current size. */
        CURRENT_SIZE
    }

    /**
     * Parses the 512 bytes of {@code buf} from its position (which it leaves unchanged).
     *
     * @param offset the footer's offset in the file, for messages
     * @throws CorruptImageException if the cookie or the checksum is wrong
     */
    static VpcFooter parse(ByteBuffer buf, String resource, long offset) throws CorruptImageException {
        int p = buf.position();
        if (buf.remaining() < VpcFields.FOOTER_LENGTH || buf.getLong(p) != VpcFields.FOOTER_COOKIE) {
            throw new CorruptImageException(resource, offset, "no VHD footer (cookie \"conectix\") here");
        }
        int stored = buf.getInt(p + 64);
        int computed = VpcFields.checksum(buf, p, VpcFields.FOOTER_LENGTH, p + 64);
        if (stored != computed) {
            throw new CorruptImageException(resource, offset + 64, "Incorrect header checksum: the footer says 0x"
                    + Integer.toHexString(stored) + ", its bytes sum to 0x" + Integer.toHexString(computed));
        }
        VpcGeometry geometry = new VpcGeometry(buf.getShort(p + 56) & 0xFFFF, buf.get(p + 58) & 0xFF,
                buf.get(p + 59) & 0xFF);
        return new VpcFooter(buf.getInt(p + 8), buf.getInt(p + 12), buf.getLong(p + 16),
                buf.getInt(p + 24) & 0xFFFF_FFFFL, VpcFields.fourCc(buf.getInt(p + 28)), buf.getInt(p + 32),
                VpcFields.fourCc(buf.getInt(p + 36)), buf.getLong(p + 40), buf.getLong(p + 48), geometry,
                buf.getInt(p + 60), VpcFields.uuid(buf, p + 68), buf.get(p + 84) != 0);
    }

    /** Writes the footer (reserved bytes zero, checksum computed) at {@code buf}'s position, advancing it. */
    void writeTo(ByteBuffer buf) {
        int p = buf.position();
        buf.put(p, new byte[VpcFields.FOOTER_LENGTH]);
        buf.putLong(p, VpcFields.FOOTER_COOKIE).putInt(p + 8, features).putInt(p + 12, formatVersion)
                .putLong(p + 16, dataOffset).putInt(p + 24, (int) timestamp)
                .putInt(p + 28, VpcFields.fourCc(creatorApp)).putInt(p + 32, creatorVersion)
                .putInt(p + 36, VpcFields.fourCc(creatorOs)).putLong(p + 40, originalSize)
                .putLong(p + 48, currentSize).putShort(p + 56, (short) geometry.cylinders())
                .put(p + 58, (byte) geometry.heads()).put(p + 59, (byte) geometry.sectorsPerTrack())
                .putInt(p + 60, diskType);
        VpcFields.putUuid(buf, p + 68, uniqueId);
        buf.put(p + 84, (byte) (savedState ? 1 : 0));
        buf.putInt(p + 64, VpcFields.checksum(buf, p, VpcFields.FOOTER_LENGTH, p + 64));
        buf.position(p + VpcFields.FOOTER_LENGTH);
    }

    /** Whether the disk is fixed (its data, then this footer). */
    boolean fixed() {
        return diskType == VpcFields.TYPE_FIXED;
    }

    /**
     * The virtual size in sectors as QEMU 7.2 computes it: by the geometry, or by the current size (rounded
     * down to a sector) for the creators that size images that way, at the largest geometry, or when
     * {@code calc} asks for it.
     */
    long sectors(SizeCalc calc) {
        boolean useChs = !CURRENT_SIZE_CREATORS.contains(creatorApp) || calc == SizeCalc.CHS;
        long chs = geometry.sectors();
        if (!useChs || chs == VpcGeometry.MAX_SECTORS_CHS || calc == SizeCalc.CURRENT_SIZE) {
            return Long.divideUnsigned(currentSize, VpcFields.SECTOR);
        }
        return chs;
    }

    @Override
    public String toString() {
        return "VpcFooter[type " + diskType + ", creator '" + creatorApp.replace('\0', ' ') + "', geometry "
                + geometry + ", current size " + Long.toUnsignedString(currentSize) + "]";
    }
}
