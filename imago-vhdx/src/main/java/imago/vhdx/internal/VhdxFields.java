package imago.vhdx.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;
import java.util.zip.CRC32C;

/** Constants and little helpers of the VHDX layout (all integers little-endian; GUIDs in Microsoft's byte order). */
final class VhdxFields {
    static final long KIB = 1024;
    static final long MIB = 1024 * KIB;
    /** "vhdxfile" at offset 0. */
    static final byte[] FILE_SIGNATURE = {'v', 'h', 'd', 'x', 'f', 'i', 'l', 'e'};
    static final int HEADER_LENGTH = 4096;
    static final long[] HEADER_OFFSETS = {64 * KIB, 128 * KIB};
    static final int REGION_TABLE_LENGTH = 64 * 1024;
    static final long[] REGION_TABLE_OFFSETS = {192 * KIB, 256 * KIB};
    /** The file type identifier, headers and region tables occupy the first MiB. */
    static final long HEADER_SECTION = MIB;
    static final int HEADER_SIGNATURE = sig("head");
    static final int REGION_SIGNATURE = sig("regi");
    static final int LOG_ENTRY_SIGNATURE = sig("loge");
    static final int DATA_DESCRIPTOR_SIGNATURE = sig("desc");
    static final int ZERO_DESCRIPTOR_SIGNATURE = sig("zero");
    static final int DATA_SECTOR_SIGNATURE = sig("data");
    static final long METADATA_SIGNATURE = ByteBuffer.wrap(new byte[] {'m', 'e', 't', 'a', 'd', 'a', 't', 'a'})
            .order(ByteOrder.LITTLE_ENDIAN).getLong();

    static final UUID BAT_REGION = UUID.fromString("2dc27766-f623-4200-9d64-115e9bfd4a08");
    static final UUID METADATA_REGION = UUID.fromString("8b7ca206-4790-4b9a-b8fe-575f050f886e");
    static final UUID FILE_PARAMETERS = UUID.fromString("caa16737-fa36-4d43-b3b6-33f0aa44e76b");
    static final UUID VIRTUAL_DISK_SIZE = UUID.fromString("2fa54224-cd1b-4876-b211-5dbed83bf4b8");
    static final UUID PAGE83_DATA = UUID.fromString("beca12ab-b2e6-4523-93ef-c309e000c746");
    static final UUID LOGICAL_SECTOR_SIZE = UUID.fromString("8141bf1d-a96f-4709-ba47-f233a8faab5f");
    static final UUID PHYSICAL_SECTOR_SIZE = UUID.fromString("cda348c7-445d-4471-9cc9-e9885251c556");
    static final UUID PARENT_LOCATOR = UUID.fromString("a8d35f2e-b30b-454d-abf7-d3d84834ab0c");
    static final UUID VHDX_PARENT_LOCATOR_TYPE = UUID.fromString("b04aefb7-d19e-4a81-b789-25b8e9445913");
    static final UUID NIL = new UUID(0, 0);

    static final long MIN_BLOCK_SIZE = MIB;
    static final long MAX_BLOCK_SIZE = 256 * MIB;
    static final long MAX_SIZE = 64L << 40;
    /** The sector bitmap block that covers one chunk: 1 MiB, one bit per logical sector. */
    static final long SECTOR_BITMAP_BLOCK = MIB;

    // payload block states (BAT entry bits 0..2)
    static final int NOT_PRESENT = 0;
    static final int UNDEFINED = 1;
    static final int ZERO = 2;
    static final int UNMAPPED = 3;
    static final int FULLY_PRESENT = 6;
    static final int PARTIALLY_PRESENT = 7;
    /** Sector bitmap block state "present". */
    static final int BITMAP_PRESENT = 6;

    private VhdxFields() {
    }

    private static int sig(String s) {
        return (s.charAt(0)) | (s.charAt(1) << 8) | (s.charAt(2) << 16) | (s.charAt(3) << 24);
    }

    static ByteBuffer le(int capacity) {
        return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    static ByteBuffer le(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A GUID stored at {@code at}: Data1..Data3 little-endian, Data4 as bytes. */
    static UUID guid(ByteBuffer b, int at) {
        long d1 = b.getInt(at) & 0xFFFF_FFFFL;
        long d2 = b.getShort(at + 4) & 0xFFFFL;
        long d3 = b.getShort(at + 6) & 0xFFFFL;
        long high = (d1 << 32) | (d2 << 16) | d3;
        long low = 0;
        for (int i = 8; i < 16; i++) {
            low = (low << 8) | (b.get(at + i) & 0xFF);
        }
        return new UUID(high, low);
    }

    static void putGuid(ByteBuffer b, int at, UUID g) {
        long high = g.getMostSignificantBits();
        b.putInt(at, (int) (high >>> 32));
        b.putShort(at + 4, (short) (high >>> 16));
        b.putShort(at + 6, (short) high);
        long low = g.getLeastSignificantBits();
        for (int i = 15; i >= 8; i--) {
            b.put(at + i, (byte) low);
            low >>>= 8;
        }
    }

    /** CRC-32C of {@code length} bytes from {@code from} in {@code b}, the 4 bytes at {@code checksumAt} taken as 0. */
    static int crc(ByteBuffer b, int from, int length, int checksumAt) {
        CRC32C crc = new CRC32C();
        ByteBuffer d = b.duplicate().clear();
        d.limit(checksumAt).position(from);
        crc.update(d);
        crc.update(new byte[4]);
        d.limit(from + length).position(checksumAt + 4);
        crc.update(d);
        return (int) crc.getValue();
    }

    static long roundUp(long value, long unit) {
        return (value + unit - 1) / unit * unit;
    }

    /** {@code a + b}, or a {@link CorruptImageException} naming the field when it overflows. */
    static long add(String name, long offset, String field, long a, long b) throws CorruptImageException {
        try {
            return Math.addExact(a, b);
        } catch (ArithmeticException e) {
            throw new CorruptImageException(name, offset, field + " overflows: " + Long.toUnsignedString(a) + " + "
                    + Long.toUnsignedString(b));
        }
    }
}
