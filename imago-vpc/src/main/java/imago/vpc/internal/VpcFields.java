package imago.vpc.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/** Constants and byte-level helpers shared by the VHD structures. */
final class VpcFields {
    /** Every VHD sector is 512 bytes. */
    static final int SECTOR = 512;
    /** The footer's length. */
    static final int FOOTER_LENGTH = 512;
    /** The dynamic disk header's length. */
    static final int HEADER_LENGTH = 1024;
    /** "conectix". */
    static final long FOOTER_COOKIE = cookie("conectix");
    /** "cxsparse". */
    static final long HEADER_COOKIE = cookie("cxsparse");
    /** A BAT entry for a block that is not allocated. */
    static final int UNUSED = 0xFFFF_FFFF;
    /** The all-ones data offset of a fixed disk's footer and of the dynamic header. */
    static final long NO_OFFSET = -1L;
    /** The time stamps' epoch, 2000-01-01 00:00:00 UTC, in Unix seconds. */
    static final long EPOCH_2000 = 946_684_800L;

    /** Disk type 2. */
    static final int TYPE_FIXED = 2;
    /** Disk type 3. */
    static final int TYPE_DYNAMIC = 3;
    /** Disk type 4. */
    static final int TYPE_DIFFERENCING = 4;

    private VpcFields() {
    }

    private static long cookie(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII)).getLong();
    }

    /**
     * The one's complement of the sum of {@code length} bytes from {@code from}, with the four bytes of the
     * checksum field at {@code checksumAt} counted as zero.
     */
    static int checksum(ByteBuffer buf, int from, int length, int checksumAt) {
        int sum = 0;
        for (int i = 0; i < length; i++) {
            int p = from + i;
            if (p >= checksumAt && p < checksumAt + 4) {
                continue;
            }
            sum += buf.get(p) & 0xFF;
        }
        return ~sum;
    }

    /** Four bytes as a string of the same four characters (ISO-8859-1, so every byte survives). */
    static String fourCc(int value) {
        byte[] b = ByteBuffer.allocate(4).putInt(value).array();
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    /** A four-character code's bytes as an int. */
    static int fourCc(String code) {
        byte[] b = code.getBytes(StandardCharsets.ISO_8859_1);
        if (b.length != 4) {
            throw new IllegalArgumentException("not a four-character code: '" + code + "'");
        }
        return ByteBuffer.wrap(b).getInt();
    }

    /** A UUID stored big-endian (as VHD stores them). */
    static UUID uuid(ByteBuffer buf, int at) {
        return new UUID(buf.getLong(at), buf.getLong(at + 8));
    }

    /** Writes {@code id} big-endian at {@code at}. */
    static void putUuid(ByteBuffer buf, int at, UUID id) {
        buf.putLong(at, id.getMostSignificantBits()).putLong(at + 8, id.getLeastSignificantBits());
    }

    /** {@code a + b} for non-negative operands, or a {@link CorruptImageException} when it overflows. */
    static long add(String resource, long offset, long a, long b, String what) throws CorruptImageException {
        long r = a + b;
        if (a < 0 || b < 0 || r < 0) {
            throw new CorruptImageException(resource, offset, what + " overflows (" + Long.toUnsignedString(a)
                    + " + " + Long.toUnsignedString(b) + ")");
        }
        return r;
    }

    /** {@code value} rounded up to a multiple of {@code unit} (a power of two). */
    static long roundUp(long value, long unit) {
        return (value + unit - 1) & -unit;
    }

    /** The block bitmap's length for {@code blockSize}, by QEMU's formula (0 for blocks under 4 KiB). */
    static int bitmapLength(long blockSize) {
        return (int) roundUp(blockSize / (8 * SECTOR), SECTOR);
    }
}
