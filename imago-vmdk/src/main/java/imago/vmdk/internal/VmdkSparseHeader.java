package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The header of a hosted sparse extent ({@code KDMV}, versions 1 to 3), little-endian, in the first sector (and,
 * for a stream whose grain directory is at the end, again in the footer). Offsets and sizes count 512-byte sectors.
 *
 * @param version 1, 2 (zeroed-grain GTEs) or 3 (changed-block tracking; streamOptimized)
 * @param flags {@link #FLAG_NL_DETECT}, {@link #FLAG_RGD}, {@link #FLAG_ZERO_GRAIN}, {@link #FLAG_COMPRESSED},
 *        {@link #FLAG_MARKERS}; other bits are kept as they are
 * @param capacity the extent's size in sectors
 * @param grainSize sectors per grain
 * @param descriptorOffset where an embedded descriptor starts (0 for none)
 * @param descriptorSize its size
 * @param gtesPerGt grain table entries per grain table
 * @param rgdOffset the redundant grain directory
 * @param gdOffset the grain directory, or {@link #GD_AT_END} for a stream that keeps it in the footer
 * @param overhead where the first grain may start (QEMU's {@code grain_offset})
 * @param uncleanShutdown set while a writer has the extent open
 * @param newlineCheck the four bytes {@code \n \r\n} that tell a file damaged by a text-mode transfer
 * @param compressAlgorithm 0 (none) or 1 (deflate)
 */
record VmdkSparseHeader(int version, int flags, long capacity, long grainSize, long descriptorOffset,
        long descriptorSize, int gtesPerGt, long rgdOffset, long gdOffset, long overhead, int uncleanShutdown,
        int newlineCheck, int compressAlgorithm) {

    /** "KDMV" as the first four bytes. */
    static final int MAGIC = 0x4B444D56;
    /** The header's size on disk: one sector. */
    static final int SIZE = 512;
    /** The newline check bytes {@code '\n', ' ', '\r', '\n'} read as a little-endian int. */
    static final int NEWLINE_CHECK = 0x0A0D200A;
    static final int FLAG_NL_DETECT = 1;
    static final int FLAG_RGD = 1 << 1;
    static final int FLAG_ZERO_GRAIN = 1 << 2;
    static final int FLAG_COMPRESSED = 1 << 16;
    static final int FLAG_MARKERS = 1 << 17;
    /** The grain directory offset of a stream whose directory follows the grains (the footer has the real one). */
    static final long GD_AT_END = -1;
    static final int COMPRESS_NONE = 0;
    static final int COMPRESS_DEFLATE = 1;
    /** QEMU's limit on the grain size: 0x200000 sectors (1 GiB). */
    static final long MAX_GRAIN_SECTORS = 0x200000;
    /** QEMU's limit on grain table entries per table. */
    static final int MAX_GTES_PER_GT = 512;
    /** QEMU's limit on grain directory entries: 32 Mi (a 128 MiB directory). */
    static final long MAX_GD_ENTRIES = 32L << 20;

    /** Whether {@code head} starts with the magic. */
    static boolean hasMagic(ByteBuffer head) {
        return head.remaining() >= 4 && head.order(ByteOrder.BIG_ENDIAN).getInt(head.position()) == MAGIC;
    }

    /** Reads the header from {@code buf}'s first {@link #SIZE} bytes (the magic is checked by the caller). */
    static VmdkSparseHeader parse(ByteBuffer buf) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int p = b.position();
        return new VmdkSparseHeader(b.getInt(p + 4), b.getInt(p + 8), b.getLong(p + 12), b.getLong(p + 20),
                b.getLong(p + 28), b.getLong(p + 36), b.getInt(p + 44), b.getLong(p + 48), b.getLong(p + 56),
                b.getLong(p + 64), b.get(p + 72) & 0xFF, b.getInt(p + 73), b.getShort(p + 77) & 0xFFFF);
    }

    /** Writes the header (magic included) as one zero-padded sector at {@code buf}'s position. */
    void writeTo(ByteBuffer buf) {
        ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int p = b.position();
        b.put(p, new byte[SIZE]);
        b.order(ByteOrder.BIG_ENDIAN).putInt(p, MAGIC).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(p + 4, version).putInt(p + 8, flags).putLong(p + 12, capacity).putLong(p + 20, grainSize)
                .putLong(p + 28, descriptorOffset).putLong(p + 36, descriptorSize).putInt(p + 44, gtesPerGt)
                .putLong(p + 48, rgdOffset).putLong(p + 56, gdOffset).putLong(p + 64, overhead)
                .put(p + 72, (byte) uncleanShutdown).putInt(p + 73, newlineCheck)
                .putShort(p + 77, (short) compressAlgorithm);
        buf.position(p + SIZE);
    }

    boolean has(int flag) {
        return (flags & flag) != 0;
    }

    /** Grains are deflated (QEMU's test: the algorithm, not the flag). */
    boolean compressed() {
        return compressAlgorithm == COMPRESS_DEFLATE;
    }

    /** Compressed grains start with a marker (lba, size). */
    boolean markers() {
        return has(FLAG_MARKERS);
    }

    /** GTE 1 means a grain of zeroes. */
    boolean zeroGrains() {
        return has(FLAG_ZERO_GRAIN);
    }

    /** The grain size in bytes. */
    int grainBytes() {
        return Math.toIntExact(grainSize * VmdkDescriptor.SECTOR);
    }

    /** The bytes one grain table covers. */
    long gtCoverage() {
        return (long) gtesPerGt * grainBytes();
    }

    /** Grain directory entries: one per grain table needed for the capacity. */
    long gdEntries() {
        long span = (long) gtesPerGt * grainSize;
        return (capacity + span - 1) / span;
    }

    /**
     * Checks the header as QEMU does, and against the file it is in.
     *
     * @param resource the extent file, for messages
     * @param at where this header is in the file (0, or the footer's position)
     * @param fileSize the file's size in bytes
     * @param writable whether the extent is opened for writing
     * @param forCheck whether it is opened for a check: tables past the end of the file then read as empty, as QEMU
     *        reads them
     * @throws UnsupportedFeatureException for an unknown version, compression algorithm, or a version 3 extent
     *         opened for writing that is not compressed (QEMU reads those only)
     * @throws ImageLimitException for grains, tables or a capacity larger than QEMU's limits
     * @throws CorruptImageException for a zero grain or table size, damaged newline bytes, or tables or the first
     *         grain past the end of the file
     */
    void validate(String resource, long at, long fileSize, boolean writable, boolean forCheck)
            throws UnsupportedFeatureException, ImageLimitException, CorruptImageException {
        if (version < 1 || version > 3) {
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "VMDK version " + version,
                    "Unsupported VMDK version " + Integer.toUnsignedString(version));
        }
        if (version == 3 && writable && !compressed()) {
            // changed-block tracking (VMware KB 2064959): readable as version 1, not writable
            throw new UnsupportedFeatureException(resource, Feature.FORMAT_VERSION, "VMDK version 3",
                    "VMDK version 3 must be read only");
        }
        if (compressAlgorithm != COMPRESS_NONE && compressAlgorithm != COMPRESS_DEFLATE) {
            throw new UnsupportedFeatureException(resource, Feature.COMPRESSION_TYPE, "VMDK compression "
                    + compressAlgorithm, "unknown grain compression algorithm " + compressAlgorithm
                    + " (at offset " + (at + 77) + ")");
        }
        if (has(FLAG_NL_DETECT) && newlineCheck != NEWLINE_CHECK) {
            throw new CorruptImageException(resource, at + 73, "the newline check bytes are damaged (was the file "
                    + "copied as text?)");
        }
        if (Integer.compareUnsigned(gtesPerGt, MAX_GTES_PER_GT) > 0) {
            throw new ImageLimitException(resource, at + 44, "L2 table size too big: "
                    + Integer.toUnsignedString(gtesPerGt) + " grain table entries (at most " + MAX_GTES_PER_GT + ")");
        }
        if (grainSize <= 0 || gtesPerGt == 0) {
            throw new CorruptImageException(resource, at + 20, "L1 entry size is invalid: grains of " + grainSize
                    + " sectors, " + gtesPerGt + " entries per grain table");
        }
        if (grainSize > MAX_GRAIN_SECTORS) {
            throw new ImageLimitException(resource, at + 20, "Invalid granularity, image may be corrupt: grains of "
                    + Long.toUnsignedString(grainSize) + " sectors (at most " + MAX_GRAIN_SECTORS + ")");
        }
        if (capacity < 0 || capacity > VmdkDescriptor.MAX_SECTORS) {
            throw new ImageLimitException(resource, at + 12, "the capacity of " + Long.toUnsignedString(capacity)
                    + " sectors is past 2^63 bytes");
        }
        if (gdEntries() > MAX_GD_ENTRIES) {
            throw new ImageLimitException(resource, at + 12, "L1 size too big: " + gdEntries()
                    + " grain directory entries (at most " + MAX_GD_ENTRIES + ")");
        }
        if (overhead < 0 || overhead > fileSize / VmdkDescriptor.SECTOR) {
            throw new CorruptImageException(resource, at + 64, "File truncated, expecting at least "
                    + (overhead < 0 || overhead > VmdkDescriptor.MAX_SECTORS ? "2^63"
                            : Long.toString(overhead * VmdkDescriptor.SECTOR)) + " bytes");
        }
        long gdBytes = gdEntries() * 4;
        if (forCheck) {
            return;
        }
        if (gdOffset != GD_AT_END) {
            checkTable(resource, at + 56, "grain directory", gdOffset, gdBytes, fileSize);
        }
        if (has(FLAG_RGD)) {
            checkTable(resource, at + 48, "redundant grain directory", rgdOffset, gdBytes, fileSize);
        }
        if (descriptorOffset != 0) {
            checkTable(resource, at + 28, "descriptor", descriptorOffset, 0, fileSize);
            if (descriptorSize < 0 || descriptorSize > VmdkDescriptor.MAX_BYTES / VmdkDescriptor.SECTOR) {
                throw new ImageLimitException(resource, at + 36, "the embedded descriptor of "
                        + Long.toUnsignedString(descriptorSize) + " sectors is larger than the limit of "
                        + VmdkDescriptor.MAX_BYTES + " bytes");
            }
        }
    }

    /** A table of {@code bytes} at sector {@code sector} must lie inside the file. */
    static void checkTable(String resource, long field, String what, long sector, long bytes, long fileSize)
            throws CorruptImageException {
        if (sector <= 0 || sector > (fileSize - bytes) / VmdkDescriptor.SECTOR
                || sector * VmdkDescriptor.SECTOR + bytes > fileSize) {
            throw new CorruptImageException(resource, field, "the " + what + " at sector "
                    + Long.toUnsignedString(sector) + " (" + bytes + " bytes) lies outside the file of " + fileSize
                    + " bytes");
        }
    }
}
