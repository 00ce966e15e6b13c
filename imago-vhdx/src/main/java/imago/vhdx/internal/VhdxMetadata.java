package imago.vhdx.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.Feature;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * The metadata region's items: file parameters, virtual disk size, logical and physical sector size, page 83 data
 * and, for a differencing disk, the parent locator.
 *
 * @param blockSize the payload block size (1 MiB to 256 MiB, a power of two)
 * @param leaveBlocksAllocated the file parameters' flag (fixed disks)
 * @param hasParent whether the disk is a differencing disk
 * @param size the virtual size
 * @param logicalSectorSize 512 or 4096
 * @param physicalSectorSize 512 or 4096
 * @param page83 the page 83 data (a GUID)
 * @param parentLocator the parent locator's key/value pairs (empty unless {@code hasParent})
 */
record VhdxMetadata(long blockSize, boolean leaveBlocksAllocated, boolean hasParent, long size,
        int logicalSectorSize, int physicalSectorSize, UUID page83, Map<String, String> parentLocator) {
    static final int TABLE_LENGTH = 64 * 1024;
    static final int MAX_ENTRIES = 2047;
    /** The most bytes a parent locator item may have here (its key/value strings are paths). */
    static final int MAX_LOCATOR = 64 * 1024;

    VhdxMetadata {
        parentLocator = Map.copyOf(parentLocator);
    }

    /**
     * Reads the metadata region at {@code at} ({@code length} bytes) of {@code storage}.
     *
     * @throws CorruptImageException if the table or an item is damaged, missing or out of range
     * @throws UnsupportedFeatureException if a required item is unknown
     */
    static VhdxMetadata read(Storage storage, long at, long length) throws IOException {
        String name = storage.name();
        if (length < TABLE_LENGTH) {
            throw new CorruptImageException(name, at, "metadata region of " + length + " bytes cannot hold its table");
        }
        ByteBuffer t = VhdxFields.le(TABLE_LENGTH);
        if (at < storage.size()) { // past the end of the file (cut short) the table is zeroes, as in QEMU: unread
            storage.read(t, at);
        }
        if (t.getLong(0) != VhdxFields.METADATA_SIGNATURE) {
            throw new CorruptImageException(name, at, "metadata table signature is not \"metadata\"");
        }
        int count = t.getShort(10) & 0xFFFF;
        if (count > MAX_ENTRIES) {
            throw new CorruptImageException(name, at + 10, "metadata table entry count " + count + " is over "
                    + MAX_ENTRIES);
        }
        Map<UUID, long[]> items = new LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            int e = 32 + 32 * i;
            UUID id = VhdxFields.guid(t, e);
            long offset = t.getInt(e + 16) & 0xFFFF_FFFFL;
            long len = t.getInt(e + 20) & 0xFFFF_FFFFL;
            int flags = t.getInt(e + 24);
            boolean user = (flags & 1) != 0;
            boolean required = (flags & 4) != 0;
            if (len > 0 && (offset < TABLE_LENGTH || offset + len > length)) {
                throw new CorruptImageException(name, at + e + 16, "metadata item " + id + " (" + len + " bytes at "
                        + offset + ") is not inside the metadata region after its table");
            }
            // QEMU ignores items it does not know unless they are required (all-zero entries of a table cut short)
            if (!user && KNOWN.contains(id) && items.put(id, new long[] {offset, len}) != null) {
                throw new CorruptImageException(name, at + e, "metadata item " + id + " appears twice");
            }
            if (required && !user && !KNOWN.contains(id)) {
                throw new UnsupportedFeatureException(name, Feature.OTHER, "metadata item " + id,
                        "a required metadata item is unknown: " + id);
            }
        }
        // QEMU wants every required item present before it looks at any (-ENOTSUP)
        for (Map.Entry<UUID, String> required : REQUIRED.entrySet()) {
            if (!items.containsKey(required.getKey())) {
                throw new CorruptImageException(name, at, "metadata item \"" + required.getValue() + "\" ("
                        + required.getKey() + ") is missing");
            }
        }
        ByteBuffer fp = item(storage, at, items, VhdxFields.FILE_PARAMETERS, 8, "file parameters");
        long blockSize = fp.getInt(0) & 0xFFFF_FFFFL;
        int flags = fp.getInt(4);
        long itemAt = at + items.get(VhdxFields.FILE_PARAMETERS)[0];
        if (blockSize < VhdxFields.MIN_BLOCK_SIZE || blockSize > VhdxFields.MAX_BLOCK_SIZE
                || Long.bitCount(blockSize) != 1) {
            throw new CorruptImageException(name, itemAt, "block size " + blockSize + " is not a power of two from "
                    + "1 MiB to 256 MiB");
        }
        long size = item(storage, at, items, VhdxFields.VIRTUAL_DISK_SIZE, 8, "virtual disk size").getLong(0);
        if (size < 0 || size > VhdxFields.MAX_SIZE) {
            throw new ImageLimitException(name, at + items.get(VhdxFields.VIRTUAL_DISK_SIZE)[0], "virtual disk size "
                    + Long.toUnsignedString(size) + " is over VHDX's 64 TiB");
        }
        int logical = sectorSize(storage, at, items, VhdxFields.LOGICAL_SECTOR_SIZE, "logical sector size");
        int physical = sectorSize(storage, at, items, VhdxFields.PHYSICAL_SECTOR_SIZE, "physical sector size");
        UUID page83 = VhdxFields.guid(item(storage, at, items, VhdxFields.PAGE83_DATA, 16, "page 83 data"), 0);
        if (size % logical != 0) {
            throw new CorruptImageException(name, at + items.get(VhdxFields.VIRTUAL_DISK_SIZE)[0], "virtual disk size "
                    + size + " is not a multiple of the logical sector size " + logical);
        }
        boolean hasParent = (flags & 2) != 0;
        Map<String, String> locator = Map.of();
        if (hasParent) {
            long[] loc = items.get(VhdxFields.PARENT_LOCATOR);
            if (loc == null) {
                throw new CorruptImageException(name, itemAt, "a differencing disk without a parent locator");
            }
            if (loc[1] > MAX_LOCATOR || loc[1] < 20) {
                throw new ImageLimitException(name, at + loc[0], "parent locator of " + loc[1] + " bytes (imago "
                        + "reads 20 to " + MAX_LOCATOR + ")");
            }
            locator = locator(name, at + loc[0], read(storage, at + loc[0], (int) loc[1]));
        }
        return new VhdxMetadata(blockSize, (flags & 1) != 0, hasParent, size, logical, physical, page83, locator);
    }

    /** The items every image has, with the names messages give them, in QEMU's order. */
    private static final Map<UUID, String> REQUIRED = requiredItems();

    private static Map<UUID, String> requiredItems() {
        Map<UUID, String> m = new LinkedHashMap<>();
        m.put(VhdxFields.FILE_PARAMETERS, "file parameters");
        m.put(VhdxFields.VIRTUAL_DISK_SIZE, "virtual disk size");
        m.put(VhdxFields.PAGE83_DATA, "page 83 data");
        m.put(VhdxFields.LOGICAL_SECTOR_SIZE, "logical sector size");
        m.put(VhdxFields.PHYSICAL_SECTOR_SIZE, "physical sector size");
        return java.util.Collections.unmodifiableMap(m);
    }

    private static final Set<UUID> KNOWN = Set.of(VhdxFields.FILE_PARAMETERS, VhdxFields.VIRTUAL_DISK_SIZE,
            VhdxFields.PAGE83_DATA, VhdxFields.LOGICAL_SECTOR_SIZE, VhdxFields.PHYSICAL_SECTOR_SIZE,
            VhdxFields.PARENT_LOCATOR);

    private static ByteBuffer item(Storage storage, long at, Map<UUID, long[]> items, UUID id, int minLength,
            String what) throws IOException {
        long[] item = items.get(id);
        if (item == null) {
            throw new CorruptImageException(storage.name(), at, "metadata item \"" + what + "\" (" + id
                    + ") is missing");
        }
        if (item[1] < minLength) {
            throw new CorruptImageException(storage.name(), at + item[0], "metadata item \"" + what + "\" has "
                    + item[1] + " bytes, fewer than " + minLength);
        }
        return read(storage, at + item[0], minLength);
    }

    private static ByteBuffer read(Storage storage, long at, int length) throws IOException {
        ByteBuffer b = VhdxFields.le(length);
        storage.read(b, at);
        if (b.hasRemaining()) {
            throw new CorruptImageException(storage.name(), at + b.position(), "file ends inside the metadata");
        }
        return b.flip();
    }

    private static int sectorSize(Storage storage, long at, Map<UUID, long[]> items, UUID id, String what)
            throws IOException {
        int v = item(storage, at, items, id, 4, what).getInt(0);
        if (v != 512 && v != 4096) {
            throw new CorruptImageException(storage.name(), at + items.get(id)[0], what + " "
                    + Integer.toUnsignedString(v) + " is neither 512 nor 4096");
        }
        return v;
    }

    /** The parent locator's key/value pairs (UTF-16LE strings, decoded strictly). */
    static Map<String, String> locator(String name, long at, ByteBuffer b) throws CorruptImageException {
        UUID type = VhdxFields.guid(b, 0);
        if (!type.equals(VhdxFields.VHDX_PARENT_LOCATOR_TYPE)) {
            throw new CorruptImageException(name, at, "parent locator type " + type + " is not VHDX's");
        }
        int count = b.getShort(18) & 0xFFFF;
        if (20L + 12L * count > b.capacity()) {
            throw new CorruptImageException(name, at + 18, "parent locator's " + count + " entries do not fit in it");
        }
        Map<String, String> out = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < count; i++) {
            int e = 20 + 12 * i;
            String key = string(name, at, b, b.getInt(e) & 0xFFFF_FFFFL, b.getShort(e + 8) & 0xFFFF, e);
            String value = string(name, at, b, b.getInt(e + 4) & 0xFFFF_FFFFL, b.getShort(e + 10) & 0xFFFF, e);
            if (!seen.add(key)) {
                throw new CorruptImageException(name, at + e, "parent locator key \"" + key + "\" appears twice");
            }
            out.put(key, value);
        }
        return out;
    }

    private static String string(String name, long at, ByteBuffer b, long offset, int length, int entry)
            throws CorruptImageException {
        if (offset + length > b.capacity() || length % 2 != 0 || length == 0) {
            throw new CorruptImageException(name, at + entry, "parent locator entry " + ((entry - 20) / 12)
                    + " names a string of " + length + " bytes at " + offset + " outside the locator");
        }
        ByteBuffer s = b.duplicate().position((int) offset).limit((int) offset + length);
        try {
            String v = StandardCharsets.UTF_16LE.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(s).toString();
            for (int i = 0; i < v.length(); i++) {
                if (v.charAt(i) < 0x20) {
                    throw new CorruptImageException(name, at + offset, "parent locator string has a control "
                            + "character");
                }
            }
            return v;
        } catch (CharacterCodingException e) {
            throw new CorruptImageException(name, at + offset, "parent locator string is not valid UTF-16");
        }
    }
}
