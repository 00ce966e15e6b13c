package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Opens sparse extent files: the header, or for a stream that keeps its directory at the end, the footer. */
final class VmdkSparseFiles {
    /** A stream's footer: footer marker, header copy, end-of-stream marker, one sector each, at the end. */
    static final int FOOTER = 3 * VmdkDescriptor.SECTOR;

    private VmdkSparseFiles() {
    }

    /**
     * The header that governs a {@code KDMV} file, checked.
     *
     * @param header the header as read from the first sector
     * @param at where the governing header is (0, or in the footer)
     */
    record Governing(VmdkSparseHeader header, long at, boolean footer) {
    }

    /**
     * Reads and checks the header of the {@code KDMV} file in {@code storage}: the first sector's, or the footer's
     * when the first says the grain directory is at the end.
     *
     * @throws CorruptImageException if the file is too short, the magic is wrong, or the footer is damaged
     * @throws IOException if the header is invalid (see {@link VmdkSparseHeader#validate}) or cannot be read
     */
    static Governing header(Storage storage, boolean writable, boolean forCheck) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer first = ByteBuffer.allocate(VmdkSparseHeader.SIZE);
        storage.read(first, 0);
        first.flip();
        if (fileSize < 4 || !VmdkSparseHeader.hasMagic(first)) {
            throw new CorruptImageException(resource, 0, "Image not in VMDK format: no KDMV magic");
        }
        // a header cut short reads on as zeroes, as QEMU reads it: the grain offset then says how short the file is
        VmdkSparseHeader header = VmdkSparseHeader.parse(first);
        if (header.gdOffset() != VmdkSparseHeader.GD_AT_END) {
            header.validate(resource, 0, fileSize, writable, forCheck);
            return new Governing(header, 0, false);
        }
        // QEMU reads the footer 1536 bytes before the end of the file rounded up to whole sectors
        long end = (fileSize + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR * VmdkDescriptor.SECTOR;
        long at = end - FOOTER;
        if (at < VmdkSparseHeader.SIZE) {
            throw new CorruptImageException(resource, 0, "Invalid footer: the file of " + fileSize
                    + " bytes is too short for a header and a footer");
        }
        ByteBuffer footer = ByteBuffer.allocate(FOOTER).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(footer, at);
        footer.flip();
        int sector = VmdkDescriptor.SECTOR;
        boolean valid = footer.getInt(8) == 0 && footer.getInt(12) == VmdkStreamMarkers.FOOTER
                && VmdkSparseHeader.hasMagic(footer.duplicate().position(sector))
                && footer.getLong(2 * sector) == 0 && footer.getInt(2 * sector + 8) == 0
                && footer.getInt(2 * sector + 12) == VmdkStreamMarkers.END_OF_STREAM;
        if (!valid) {
            throw new CorruptImageException(resource, at, "Invalid footer: expected a footer marker, a KDMV header "
                    + "and an end-of-stream marker in the last " + FOOTER + " bytes");
        }
        VmdkSparseHeader real = VmdkSparseHeader.parse(footer.duplicate().position(sector));
        if (real.gdOffset() == VmdkSparseHeader.GD_AT_END) {
            throw new CorruptImageException(resource, at + sector + 56, "Invalid footer: its header puts the grain "
                    + "directory at the end too");
        }
        if (writable) {
            throw new UnsupportedFeatureException(resource, Feature.OVERWRITES, "appending to a finished stream",
                    "cannot open for writing a streamOptimized extent that ends with its grain "
                            + "directory and footer (convert it instead)");
        }
        real.validate(resource, at + sector, fileSize, false, forCheck);
        return new Governing(real, at + sector, true);
    }

    /**
     * Opens the {@code KDMV} sparse extent in {@code storage}.
     *
     * @throws CorruptImageException if the header, footer or grain directory is damaged, or the header holds only
     *         a descriptor (a descriptor inside an extent is not followed)
     * @throws IOException if it cannot be read or is not supported (see {@link #header})
     */
    static VmdkSparseExtent open(Storage storage, boolean writable, boolean forCheck) throws IOException {
        Governing g = header(storage, writable, forCheck);
        VmdkSparseHeader h = g.header();
        if (h.capacity() == 0 && h.descriptorOffset() != 0) {
            throw new CorruptImageException(storage.name(), g.at() + 12, "the sparse extent holds only a descriptor; "
                    + "descriptors are not followed from extents");
        }
        return open(storage, VmdkSparseLayout.of(h), writable, forCheck);
    }

    /** "COWD" as the first four bytes read big-endian: ESX's vmfsSparse extents. */
    static final int COWD_MAGIC = 0x434F5744;
    /** Grain table entries per table in a {@code COWD} extent (QEMU's constant). */
    static final int COWD_GTES_PER_GT = 4096;

    /**
     * Opens an ESX {@code COWD} (vmfsSparse) extent, read-only, as QEMU reads it: after the magic, little-endian u32
     * version, flags, capacity (sectors), granularity (sectors per grain), grain directory offset (sectors) and
     * entry count, then fields QEMU does not use; 4096 entries per grain table; no redundant directory, no
     * compression, no zeroed-grain entries.
     *
     * @throws CorruptImageException if the magic is wrong, the file too short, the grain size 0, or the directory
     *         (or, unless {@code forCheck}, a grain table) lies past the end of the file
     * @throws ImageLimitException if the grain size or the directory exceed QEMU's limits
     */
    static VmdkSparseExtent openCowd(Storage storage, boolean forCheck) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer h = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        storage.read(h, 0);
        if (fileSize < 32 || h.order(ByteOrder.BIG_ENDIAN).getInt(0) != COWD_MAGIC) {
            throw new CorruptImageException(resource, 0, "Image not in VMDK format: no COWD header");
        }
        h.order(ByteOrder.LITTLE_ENDIAN);
        long capacity = Integer.toUnsignedLong(h.getInt(12));
        long granularity = Integer.toUnsignedLong(h.getInt(16));
        long gdSector = Integer.toUnsignedLong(h.getInt(20));
        long gdEntries = Integer.toUnsignedLong(h.getInt(24));
        if (granularity == 0) {
            throw new CorruptImageException(resource, 16, "the COWD grain size is 0");
        }
        if (granularity > VmdkSparseHeader.MAX_GRAIN_SECTORS) {
            throw new ImageLimitException(resource, 16, "Invalid granularity, image may be corrupt: grains of "
                    + granularity + " sectors (at most " + VmdkSparseHeader.MAX_GRAIN_SECTORS + ")");
        }
        if (gdEntries > VmdkSparseHeader.MAX_GD_ENTRIES) {
            throw new ImageLimitException(resource, 24, "L1 size too big: " + gdEntries
                    + " grain directory entries (at most " + VmdkSparseHeader.MAX_GD_ENTRIES + ")");
        }
        if (!forCheck) {
            VmdkSparseHeader.checkTable(resource, 20, "grain directory", gdSector, gdEntries * 4, fileSize);
        }
        VmdkSparseLayout layout = new VmdkSparseLayout(capacity, granularity, COWD_GTES_PER_GT, (int) gdEntries,
                gdSector * VmdkDescriptor.SECTOR, -1, 0, false, false, false, false);
        return open(storage, layout, false, forCheck);
    }

    /**
     * Opens a sparse extent of {@code layout}, whose directories have been checked to lie inside the file (unless
     * {@code forCheck}: then tables past its end read as empty, as QEMU reads them).
     */
    static VmdkSparseExtent open(Storage storage, VmdkSparseLayout layout, boolean writable, boolean forCheck)
            throws IOException {
        long fileSize = storage.size();
        VmdkGrainTables tables = VmdkGrainTables.load(storage, storage.name(), layout.gtesPerGt(), layout.gdEntries(),
                layout.gdOffset(), layout.rgdOffset(), () -> fileSize, !forCheck);
        return new VmdkSparseExtent(storage, layout, tables, writable && layout.writable(), fileSize,
                VmdkStreamWriter::new);
    }
}
