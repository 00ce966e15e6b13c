package imago.qcow2.internal;

import static imago.qcow2.internal.Qcow2Checks.u32;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The persistent dirty bitmaps of an image: the bitmaps header extension and the bitmap directory it
 * points at, validated as QEMU's qcow2-bitmap.c validates them, and the bit arithmetic the rooms that
 * read, track and store the bitmaps share.
 */
final class Qcow2Bitmaps {
    /** QEMU's QCOW2_MAX_BITMAPS. */
    static final int MAX_BITMAPS = 65535;
    /** QEMU's QCOW2_MAX_BITMAP_DIRECTORY_SIZE. */
    static final long MAX_DIRECTORY_SIZE = 1024L * MAX_BITMAPS;
    /** Bytes of the extension's payload. */
    static final int EXTENSION_SIZE = 24;
    /** Fixed bytes of a directory entry, before its extra data and name. */
    static final int ENTRY_FIXED = 24;
    /** Bitmap table entry: the data cluster's host offset. */
    static final long ENTRY_OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** Bitmap table entry: bits that must be zero. */
    static final long ENTRY_RESERVED_MASK = 0xff00_0000_0000_01feL;
    /** Bitmap table entry without a data cluster: every bit of the cluster is set. */
    static final long ENTRY_ALL_ONES = 1L;
    static final int FLAG_IN_USE = 1;
    static final int FLAG_AUTO = 1 << 1;
    static final int FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;
    static final int MAX_NAME = 1023;
    static final int MIN_GRANULARITY_BITS = 9;
    static final int MAX_GRANULARITY_BITS = 31;
    /** QEMU's BME_MAX_TABLE_SIZE: entries of one bitmap table. */
    static final long MAX_TABLE_SIZE = 0x8000000;
    /** QEMU's BME_MAX_PHYS_SIZE: bytes of one bitmap's data. */
    static final long MAX_PHYS_SIZE = 0x20000000;
    /** The only bitmap type: dirty tracking. */
    static final int TYPE_DIRTY_TRACKING = 1;

    /**
     * One directory entry.
     *
     * @param name the bitmap's name
     * @param granularityBits log2 of the bytes one bit covers
     * @param flags in-use, auto, extra-data-compatible
     * @param tableOffset host offset of the bitmap table (0 only for an in-use bitmap)
     * @param tableSize entries of the bitmap table
     * @param position where the entry starts in the directory
     */
    record Bitmap(String name, int granularityBits, int flags, long tableOffset, int tableSize, int position) {
        /** The entry as {@code qemu-img info} shows it: flags, name, granularity. */
        Map<String, Object> info() {
            List<String> names = new ArrayList<>();
            if ((flags & FLAG_IN_USE) != 0) {
                names.add("in-use");
            }
            if ((flags & FLAG_AUTO) != 0) {
                names.add("auto");
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("flags", List.copyOf(names));
            m.put("name", name);
            m.put("granularity", 1L << granularityBits);
            return m;
        }
    }

    /**
     * The bitmap directory as read.
     *
     * @param offset host offset of the directory (0 without bitmaps)
     * @param bytes the directory's bytes (entries with their extra data and names, padded)
     * @param bitmaps its entries, in order
     */
    record Directory(long offset, byte[] bytes, List<Bitmap> bitmaps) {
        static final Directory NONE = new Directory(0, new byte[0], List.of());
    }

    private Qcow2Bitmaps() {
    }

    /**
     * The bitmaps the header announces: none without a bitmaps extension, and none when the bitmaps
     * autoclear bit is clear (a program without bitmap support wrote the image, so QEMU ignores them).
     */
    static Directory read(Storage storage, Qcow2Header header, long fileSize) throws IOException {
        String resource = storage.name();
        Qcow2Extension ext = header.extensions().stream().filter(e -> e.type() == Qcow2Header.EXT_BITMAPS)
                .findFirst().orElse(null);
        if (ext == null) {
            return Directory.NONE;
        }
        long at = ext.offset() + 8;
        if (ext.data().length != EXTENSION_SIZE) {
            throw new CorruptImageException(resource, ext.offset() + 4, "bitmaps_ext: Invalid extension length "
                    + ext.data().length);
        }
        if ((header.autoclearFeatures() & Qcow2Header.AUTOCLEAR_BITMAPS) == 0) {
            return Directory.NONE;
        }
        ByteBuffer b = ByteBuffer.wrap(ext.data()).order(ByteOrder.BIG_ENDIAN);
        long count = u32(b.getInt(0));
        long directorySize = b.getLong(8);
        long directoryOffset = b.getLong(16);
        if (b.getInt(4) != 0) {
            throw new CorruptImageException(resource, at + 4, "bitmaps_ext: Reserved field is not zero");
        }
        if (count > MAX_BITMAPS) {
            throw new ImageLimitException(resource, at, "bitmaps_ext: Image has " + count
                    + " bitmaps, exceeding the QEMU supported maximum of " + MAX_BITMAPS);
        }
        if (count == 0) {
            throw new CorruptImageException(resource, at, "found bitmaps extension with zero bitmaps");
        }
        if ((directoryOffset & (header.clusterSize() - 1)) != 0) {
            throw new CorruptImageException(resource, at + 16, "bitmaps_ext: invalid bitmap directory offset 0x"
                    + Long.toHexString(directoryOffset));
        }
        if (directorySize > MAX_DIRECTORY_SIZE) {
            throw new ImageLimitException(resource, at + 8, "bitmaps_ext: bitmap directory size (" + directorySize
                    + ") exceeds the maximum supported size (" + MAX_DIRECTORY_SIZE + ")");
        }
        if (directorySize < count * ENTRY_FIXED || directoryOffset > fileSize - directorySize) {
            throw new CorruptImageException(resource, at + 8, "bitmap directory of " + directorySize
                    + " bytes at 0x" + Long.toHexString(directoryOffset) + " does not fit " + count
                    + " entries inside the file");
        }
        ByteBuffer dir = ByteBuffer.allocate((int) directorySize).order(ByteOrder.BIG_ENDIAN);
        storage.read(dir, directoryOffset);
        dir.flip();
        List<Bitmap> out = new ArrayList<>((int) count);
        int pos = 0;
        for (int i = 0; i < count; i++) {
            long entryAt = directoryOffset + pos;
            if (directorySize - pos < ENTRY_FIXED) {
                throw new CorruptImageException(resource, entryAt, "Broken bitmap directory: entry " + i
                        + " runs past the directory's end");
            }
            long tableOffset = dir.getLong(pos);
            long tableSize = u32(dir.getInt(pos + 8));
            int flags = dir.getInt(pos + 12);
            int type = dir.get(pos + 16) & 0xFF;
            int granularityBits = dir.get(pos + 17) & 0xFF;
            int nameSize = Short.toUnsignedInt(dir.getShort(pos + 18));
            long extraSize = u32(dir.getInt(pos + 20));
            long entrySize = (ENTRY_FIXED + extraSize + nameSize + 7) & ~7L;
            if (entrySize > directorySize - pos) {
                throw new CorruptImageException(resource, entryAt, "Broken bitmap directory: entry " + i
                        + " runs past the directory's end");
            }
            String problem = null;
            if (type != TYPE_DIRTY_TRACKING) {
                problem = "unknown type " + type;
            } else if (granularityBits < MIN_GRANULARITY_BITS || granularityBits > MAX_GRANULARITY_BITS) {
                problem = "granularity bits " + granularityBits + " out of range";
            } else if ((flags & ~(FLAG_IN_USE | FLAG_AUTO | FLAG_EXTRA_DATA_COMPATIBLE)) != 0) {
                problem = "reserved flags 0x" + Integer.toHexString(flags) + " set";
            } else if (nameSize == 0 || nameSize > MAX_NAME) {
                problem = "name size " + nameSize + " out of range";
            } else if (extraSize != 0 && (flags & FLAG_EXTRA_DATA_COMPATIBLE) == 0) {
                problem = "extra data that is not marked compatible";
            } else if (tableSize > MAX_TABLE_SIZE || tableSize * header.clusterSize() > MAX_PHYS_SIZE) {
                problem = "bitmap table size " + tableSize + " out of range";
            } else if (tableOffset == 0 ? (flags & FLAG_IN_USE) == 0
                    : (tableOffset & (header.clusterSize() - 1)) != 0 || tableOffset >= fileSize) {
                problem = "bitmap table offset 0x" + Long.toHexString(tableOffset) + " invalid";
            }
            if (problem != null) {
                throw new CorruptImageException(resource, entryAt, "Bitmap directory entry " + i
                        + " is corrupt: " + problem);
            }
            byte[] name = new byte[nameSize];
            dir.get(pos + ENTRY_FIXED + (int) extraSize, name);
            out.add(new Bitmap(new String(name, StandardCharsets.UTF_8), granularityBits, flags, tableOffset,
                    (int) tableSize, pos));
            pos += (int) entrySize;
        }
        if (pos != directorySize) {
            throw new CorruptImageException(resource, directoryOffset + pos, "Broken bitmap directory: "
                    + count + " entries take " + pos + " of its " + directorySize + " bytes");
        }
        return new Directory(directoryOffset, dir.array(), List.copyOf(out));
    }

    /** The extra data of the directory entry at {@code position} of {@code directory}. */
    static byte[] extraData(byte[] directory, int position) {
        ByteBuffer b = ByteBuffer.wrap(directory).order(ByteOrder.BIG_ENDIAN);
        int extra = b.getInt(position + 20);
        return Arrays.copyOfRange(directory, position + Qcow2Bitmaps.ENTRY_FIXED,
                position + Qcow2Bitmaps.ENTRY_FIXED + extra);
    }

    /** Bits of a bitmap of {@code size} bytes at {@code 2^granularityBits} bytes a bit. */
    static long bitCount(long size, int granularityBits) {
        return Qcow2Checks.divCeil(size, 1L << granularityBits);
    }

    /** Entries of the bitmap table QEMU expects for an image of {@code size} bytes (64-bit words, whole clusters). */
    static long tableEntries(long size, int granularityBits, int clusterBits) {
        long bytes = Qcow2Checks.divCeil(bitCount(size, granularityBits), 64) * 8;
        return Qcow2Checks.divCeil(bytes, 1L << clusterBits);
    }

    /** Sets bits {@code [from, to)} of {@code words} (bit i is bit i % 64 of word i / 64). */
    static void setRange(long[] words, long from, long to) {
        if (from >= to) {
            return;
        }
        int first = (int) (from >>> 6);
        int last = (int) ((to - 1) >>> 6);
        long head = -1L << from;
        long tail = -1L >>> -to;
        if (first == last) {
            words[first] |= head & tail;
            return;
        }
        words[first] |= head;
        Arrays.fill(words, first + 1, last, -1L);
        words[last] |= tail;
    }

    /** Clears bits {@code [from, end)} of {@code words}. */
    static void clearFrom(long[] words, long from) {
        int w = (int) (from >>> 6);
        if (w >= words.length) {
            return;
        }
        if ((from & 63) != 0) {
            words[w] &= ~(-1L << from);
            w++;
        }
        Arrays.fill(words, w, words.length, 0L);
    }
}
