package imago.vhdx.internal;

import imago.api.CorruptImageException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A region table (64 KiB, two copies at 192 KiB and 256 KiB): where the BAT and the metadata region are.
 *
 * @param entries the regions in table order
 */
record VhdxRegionTable(List<Entry> entries) {
    /** The most entries a table may have (the specification's limit). */
    static final int MAX_ENTRIES = 2047;

    /**
     * One region.
     *
     * @param guid what the region is
     * @param offset its file offset (a multiple of 1 MiB)
     * @param length its length (a multiple of 1 MiB)
     * @param required whether a reader must understand it
     */
    record Entry(UUID guid, long offset, long length, boolean required) {
    }

    VhdxRegionTable {
        entries = List.copyOf(entries);
    }

    /**
     * The table in {@code b} (64 KiB) at file offset {@code at}.
     *
     * @throws CorruptImageException if its signature, checksum or entry count is wrong
     */
    static VhdxRegionTable parse(ByteBuffer b, String name, long at) throws CorruptImageException {
        if (b.getInt(0) != VhdxFields.REGION_SIGNATURE) {
            throw new CorruptImageException(name, at, "region table signature is not \"regi\"");
        }
        if (b.getInt(4) != VhdxFields.crc(b, 0, VhdxFields.REGION_TABLE_LENGTH, 4)) {
            throw new CorruptImageException(name, at + 4, "region table checksum (CRC-32C) is wrong");
        }
        long count = b.getInt(8) & 0xFFFF_FFFFL;
        if (count > MAX_ENTRIES) {
            throw new CorruptImageException(name, at + 8, "region table entry count " + count + " is over "
                    + MAX_ENTRIES);
        }
        List<Entry> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int e = 16 + 32 * i;
            out.add(new Entry(VhdxFields.guid(b, e), b.getLong(e + 16), b.getInt(e + 24) & 0xFFFF_FFFFL,
                    (b.getInt(e + 28) & 1) != 0));
        }
        return new VhdxRegionTable(out);
    }

    ByteBuffer toBytes() {
        ByteBuffer b = VhdxFields.le(VhdxFields.REGION_TABLE_LENGTH);
        b.putInt(0, VhdxFields.REGION_SIGNATURE);
        b.putInt(8, entries.size());
        for (int i = 0; i < entries.size(); i++) {
            Entry en = entries.get(i);
            int e = 16 + 32 * i;
            VhdxFields.putGuid(b, e, en.guid());
            b.putLong(e + 16, en.offset());
            b.putInt(e + 24, (int) en.length());
            b.putInt(e + 28, en.required() ? 1 : 0);
        }
        b.putInt(4, VhdxFields.crc(b, 0, VhdxFields.REGION_TABLE_LENGTH, 4));
        return b;
    }
}
