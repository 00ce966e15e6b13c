package imago.vpc.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The dynamic disk header (see the package documentation for its layout).
 *
 * @param dataOffset the next structure's offset (all ones)
 * @param tableOffset the BAT's offset
 * @param headerVersion the header version
 * @param maxTableEntries the BAT's entry count, unsigned
 * @param blockSize the block size, unsigned
 * @param checksumValid whether the stored checksum matched (QEMU does not check it)
 * @param parentUniqueId the parent's UUID (differencing disks)
 * @param parentTimestamp the parent's modification time stamp, seconds since 2000, unsigned
 * @param parentName the parent's name (UTF-16 big-endian, up to the first NUL)
 * @param locators the eight parent locator entries
 */
record VpcDynamicHeader(long dataOffset, long tableOffset, int headerVersion, long maxTableEntries, long blockSize,
        boolean checksumValid, UUID parentUniqueId, long parentTimestamp, String parentName,
        List<VpcParentLocator> locators) {

    /** Parent locator entries in a header. */
    static final int LOCATORS = 8;

    /** Freezes the locators. */
    VpcDynamicHeader {
        locators = List.copyOf(locators);
    }

    /**
     * Parses the 1024 bytes of {@code buf} from its position (left unchanged).
     *
     * @param offset the header's file offset, for messages
     * @throws CorruptImageException if the cookie is wrong
     */
    static VpcDynamicHeader parse(ByteBuffer buf, String resource, long offset) throws CorruptImageException {
        int p = buf.position();
        if (buf.remaining() < VpcFields.HEADER_LENGTH || buf.getLong(p) != VpcFields.HEADER_COOKIE) {
            throw new CorruptImageException(resource, offset, "Invalid header magic: no dynamic disk header "
                    + "(cookie \"cxsparse\") at the footer's data offset");
        }
        boolean checksumValid = buf.getInt(p + 36) == VpcFields.checksum(buf, p, VpcFields.HEADER_LENGTH, p + 36);
        byte[] name = new byte[512];
        buf.get(p + 64, name);
        String parentName = new String(name, StandardCharsets.UTF_16BE);
        int nul = parentName.indexOf('\0');
        if (nul >= 0) {
            parentName = parentName.substring(0, nul);
        }
        List<VpcParentLocator> locators = new ArrayList<>(LOCATORS);
        for (int i = 0; i < LOCATORS; i++) {
            int e = p + 576 + 24 * i;
            locators.add(new VpcParentLocator(VpcFields.fourCc(buf.getInt(e)), buf.getInt(e + 4) & 0xFFFF_FFFFL,
                    buf.getInt(e + 8) & 0xFFFF_FFFFL, buf.getLong(e + 16), i));
        }
        return new VpcDynamicHeader(buf.getLong(p + 8), buf.getLong(p + 16), buf.getInt(p + 24),
                buf.getInt(p + 28) & 0xFFFF_FFFFL, buf.getInt(p + 32) & 0xFFFF_FFFFL, checksumValid,
                VpcFields.uuid(buf, p + 40), buf.getInt(p + 56) & 0xFFFF_FFFFL, parentName, locators);
    }

    /** Writes a header with no parent (as qemu-img writes it) at {@code buf}'s position, advancing it. */
    static void writeTo(ByteBuffer buf, long tableOffset, long maxTableEntries, long blockSize) {
        int p = buf.position();
        buf.put(p, new byte[VpcFields.HEADER_LENGTH]);
        buf.putLong(p, VpcFields.HEADER_COOKIE).putLong(p + 8, VpcFields.NO_OFFSET).putLong(p + 16, tableOffset)
                .putInt(p + 24, 0x0001_0000).putInt(p + 28, (int) maxTableEntries).putInt(p + 32, (int) blockSize);
        buf.putInt(p + 36, VpcFields.checksum(buf, p, VpcFields.HEADER_LENGTH, p + 36));
        buf.position(p + VpcFields.HEADER_LENGTH);
    }
}
