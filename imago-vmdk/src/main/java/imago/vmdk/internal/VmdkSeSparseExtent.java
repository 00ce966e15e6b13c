package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An ESX space-efficient sparse extent ({@code seSparse}), read only, as QEMU 7.2 reads it (the format is not
 * published; QEMU's checks are strict and so are these). Little-endian u64 fields throughout: a constant header
 * (magic {@code 0xcafebabe}, version {@code 0x200000001}, capacity, grain size 8 sectors, grain table size 64
 * sectors, flags 0, four reserved 0, then offsets and sizes in sectors of the volatile header, journal header,
 * journal, grain directory, grain tables, free bitmap, backmap and grains, and 304 zero bytes), and a volatile
 * header (magic {@code 0xcafecafe}, free GT number, next transaction, replay-journal flag that must be 0, 480 zero
 * bytes). A directory entry is 0 or {@code 0x10000000_xxxxxxxx} (table index); a table entry's top nibble says:
 * 0 unallocated (the whole entry 0), 1 unmapped or 2 zero (reads as zeroes), 3 allocated (the grain number is the
 * low 48 bits shifted up by 12, or'ed with bits 48-59 shifted down).
 */
final class VmdkSeSparseExtent implements VmdkExtent {
    static final long CONST_MAGIC = 0xcafebabeL;
    static final long VOLATILE_MAGIC = 0xcafecafeL;
    private static final int GRAIN_SECTORS = 8;
    private static final int GT_ENTRIES = 64 * VmdkDescriptor.SECTOR / 8;
    private static final int MAX_CACHED = 1024;

    private final Storage storage;
    private final String resource;
    private final long size;
    private final long gdOffset;
    private final long[] gd;
    private final long tablesSector;
    private final long grainsSector;
    private final Map<Integer, long[]> tables = new ConcurrentHashMap<>();

    private VmdkSeSparseExtent(Storage storage, long size, long gdOffset, long[] gd, long tablesSector,
            long grainsSector) {
        this.storage = storage;
        this.resource = storage.name();
        this.size = size;
        this.gdOffset = gdOffset;
        this.gd = gd;
        this.tablesSector = tablesSector;
        this.grainsSector = grainsSector;
    }

    /**
     * Opens the seSparse extent in {@code storage}.
     *
     * @throws CorruptImageException for a wrong magic, or a directory past the end of the file
     * @throws UnsupportedFeatureException for a version, grain or table size, flags, reserved or padding bytes
     *         QEMU does not accept, or a journal to replay
     * @throws ImageLimitException for a capacity past 2^63 bytes or a directory larger than QEMU's limit
     */
    static VmdkSeSparseExtent open(Storage storage) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer h = ByteBuffer.allocate(VmdkDescriptor.SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(h, 0);
        if (h.getLong(0) != CONST_MAGIC) {
            throw new CorruptImageException(resource, 0, "Bad const header magic: 0x" + Long.toHexString(h.getLong(0)));
        }
        unsupportedUnless(resource, h.getLong(8) == 0x2_0000_0001L, "Unsupported version: 0x"
                + Long.toHexString(h.getLong(8)));
        unsupportedUnless(resource, h.getLong(24) == GRAIN_SECTORS, "Unsupported grain size: " + h.getLong(24));
        unsupportedUnless(resource, h.getLong(32) == 64, "Unsupported grain table size: " + h.getLong(32));
        unsupportedUnless(resource, h.getLong(40) == 0, "Unsupported flags: 0x" + Long.toHexString(h.getLong(40)));
        unsupportedUnless(resource, h.getLong(48) == 0 && h.getLong(56) == 0 && h.getLong(64) == 0
                && h.getLong(72) == 0, "Unsupported reserved bits");
        for (int i = 208; i < VmdkDescriptor.SECTOR; i++) {
            unsupportedUnless(resource, h.get(i) == 0, "Unsupported non-zero const header padding");
        }
        long capacity = h.getLong(16);
        if (capacity < 0 || capacity > VmdkDescriptor.MAX_SECTORS) {
            throw new ImageLimitException(resource, 16, "the capacity of " + Long.toUnsignedString(capacity)
                    + " sectors is past 2^63 bytes");
        }
        long volatileSector = h.getLong(80);
        long gdSector = h.getLong(128);
        long gdSectors = h.getLong(136);
        long tablesSector = h.getLong(144);
        long grainsSector = h.getLong(192);
        ByteBuffer v = ByteBuffer.allocate(VmdkDescriptor.SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        VmdkSparseHeader.checkTable(resource, 80, "volatile header", volatileSector, VmdkDescriptor.SECTOR, fileSize);
        storage.read(v, volatileSector * VmdkDescriptor.SECTOR);
        if (v.getLong(0) != VOLATILE_MAGIC) {
            throw new CorruptImageException(resource, volatileSector * VmdkDescriptor.SECTOR,
                    "Bad volatile header magic: 0x" + Long.toHexString(v.getLong(0)));
        }
        unsupportedUnless(resource, v.getLong(24) == 0, "Image is dirty, Replaying journal not supported");
        for (int i = 32; i < VmdkDescriptor.SECTOR; i++) {
            unsupportedUnless(resource, v.get(i) == 0, "Unsupported non-zero volatile header padding");
        }
        long entries = gdSectors < 0 || gdSectors > Long.MAX_VALUE / VmdkDescriptor.SECTOR ? -1
                : gdSectors * VmdkDescriptor.SECTOR / 8;
        if (entries < 0 || entries > VmdkSparseHeader.MAX_GD_ENTRIES) {
            throw new ImageLimitException(resource, 136, "L1 size too big: " + Long.toUnsignedString(gdSectors)
                    + " grain directory sectors");
        }
        VmdkSparseHeader.checkTable(resource, 128, "grain directory", gdSector, entries * 8, fileSize);
        long needed = (capacity + (long) GT_ENTRIES * GRAIN_SECTORS - 1) / ((long) GT_ENTRIES * GRAIN_SECTORS);
        if (needed > entries) {
            throw new CorruptImageException(resource, 136, "the grain directory of " + entries + " entries is too "
                    + "short for a capacity of " + capacity + " sectors");
        }
        ByteBuffer dir = ByteBuffer.allocate((int) entries * 8).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(dir, gdSector * VmdkDescriptor.SECTOR);
        long[] gd = new long[(int) entries];
        dir.flip().asLongBuffer().get(gd);
        return new VmdkSeSparseExtent(storage, capacity * VmdkDescriptor.SECTOR, gdSector * VmdkDescriptor.SECTOR,
                gd, tablesSector, grainsSector);
    }

    private static void unsupportedUnless(String resource, boolean ok, String message)
            throws UnsupportedFeatureException {
        if (!ok) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "seSparse", message);
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Storage storage() {
        return storage;
    }

    @Override
    public OptionalInt grainSize() {
        return OptionalInt.of(GRAIN_SECTORS * VmdkDescriptor.SECTOR);
    }

    /** Unallocated: -1; zeroes: -2; else the grain's byte offset in the file. */
    private long lookup(long grain) throws IOException {
        int index = (int) (grain / GT_ENTRIES);
        long l1 = gd[index];
        if (l1 == 0) {
            return -1;
        }
        long entryAt = gdOffset + 8L * index;
        if ((l1 & 0xFFFF_FFFF_0000_0000L) != 0x1000_0000_0000_0000L) {
            throw new CorruptImageException(resource, entryAt, "grain directory entry " + index + " (0x"
                    + Long.toHexString(l1) + ") is not a grain table reference");
        }
        long[] table = table(index, (l1 & 0xFFFF_FFFFL), entryAt);
        long e = table[(int) (grain % GT_ENTRIES)];
        return switch ((int) (e >>> 60)) {
            case 0 -> {
                if (e != 0) {
                    throw new CorruptImageException(resource, entryAt, "grain " + grain + " has an unallocated "
                            + "entry with bits set (0x" + Long.toHexString(e) + ")");
                }
                yield -1;
            }
            case 1, 2 -> -2;
            case 3 -> {
                long cluster = ((e & 0x0FFF_0000_0000_0000L) >>> 48) | ((e & 0x0000_FFFF_FFFF_FFFFL) << 12);
                long sector = grainsSector + cluster * GRAIN_SECTORS;
                if (cluster < 0 || sector < 0 || sector > (Long.MAX_VALUE >> 9) - GRAIN_SECTORS
                        || sector * VmdkDescriptor.SECTOR >= storage.size()) {
                    throw new CorruptImageException(resource, entryAt, "grain " + grain + " points past the end of "
                            + "the file");
                }
                yield sector * VmdkDescriptor.SECTOR;
            }
            default -> throw new CorruptImageException(resource, entryAt, "grain " + grain + " has an entry of "
                    + "unknown kind (0x" + Long.toHexString(e) + ")");
        };
    }

    private long[] table(int index, long number, long entryAt) throws IOException {
        long[] t = tables.get(index);
        if (t != null) {
            return t;
        }
        long sector = tablesSector + number * 64;
        if (sector < 0 || sector > 0xFFFF_FFFFL) {
            throw new CorruptImageException(resource, entryAt, "grain table " + number + " lies past 2 TiB");
        }
        long at = sector * VmdkDescriptor.SECTOR;
        if (at + GT_ENTRIES * 8L > storage.size()) {
            throw new CorruptImageException(resource, entryAt, "grain table " + number + " lies past the end of "
                    + "the file");
        }
        ByteBuffer b = ByteBuffer.allocate(GT_ENTRIES * 8).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(b, at);
        t = new long[GT_ENTRIES];
        b.flip().asLongBuffer().get(t);
        if (tables.size() >= MAX_CACHED) {
            tables.clear();
        }
        tables.put(index, t);
        return t;
    }

    /**
     * For {@link VmdkCheck}: the extent offset of the first grain that points past the end of the file, or whose
     * lookup fails, and which ({@code [1]} is 0 or 1); {@code null} when all are well.
     */
    long[] firstProblem() throws IOException {
        int grainBytes = GRAIN_SECTORS * VmdkDescriptor.SECTOR;
        long grains = (size + grainBytes - 1) / grainBytes;
        for (long g = 0; g < grains; g++) {
            if (gd[(int) (g / GT_ENTRIES)] == 0) {
                g = (g / GT_ENTRIES + 1) * GT_ENTRIES - 1;
                continue;
            }
            try {
                lookup(g);
            } catch (CorruptImageException e) {
                return new long[] {g * grainBytes, e.getMessage().contains("past the end of the file") ? 0 : 1};
            }
        }
        return null;
    }

    @Override
    public Mapping mapping(long base, long offset, long maxLength) throws IOException {
        int grainBytes = GRAIN_SECTORS * VmdkDescriptor.SECTOR;
        long end = Math.min(size, offset + maxLength);
        long grain = offset / grainBytes;
        long first = lookup(grain);
        long pos = Math.min(end, (grain + 1) * grainBytes);
        for (int n = 0; pos < end && n < 65536; n++) {
            long g = pos / grainBytes;
            long e = lookup(g);
            boolean same = first >= 0 ? e == first + (g - grain) * grainBytes : e == first;
            if (!same) {
                break;
            }
            pos = Math.min(end, (g + 1) * grainBytes);
        }
        long length = pos - offset;
        if (first == -1) {
            return new Mapping.Unallocated(base + offset, length);
        }
        if (first == -2) {
            return Mapping.Zero.unreserved(base + offset, length);
        }
        return new Mapping.Data(base + offset, length, storage, first + offset % grainBytes);
    }

    @Override
    public WriteTicket beginWrite(long base, long offset, long length, BackingReader below)
            throws ReadOnlyImageException {
        throw new ReadOnlyImageException(resource, "No write support for seSparse images available");
    }

    @Override
    public Map<String, Object> info(String format) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", storage.name());
        m.put("format", format);
        m.put("virtual-size", size);
        m.put("cluster-size", (long) GRAIN_SECTORS * VmdkDescriptor.SECTOR);
        return m;
    }
}
