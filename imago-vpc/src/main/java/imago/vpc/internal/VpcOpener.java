package imago.vpc.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens a VHD as QEMU 7.2 does, with its checks and messages, and more: the footer copy at offset 0 makes a
 * dynamic (or differencing) disk, else the footer at the end a fixed one; every table and block must lie in the
 * file, and a writable image must not have blocks over its metadata or over each other.
 */
final class VpcOpener {
    private static final Logger LOG = LoggerFactory.getLogger(VpcOpener.class);

    private VpcOpener() {
    }

    static FormatInstance open(Storage storage, boolean writable, VpcFooter.SizeCalc calc) throws IOException {
        String name = storage.name();
        long fileSize = storage.size();
        // a file cut short reads on as zeroes, as in QEMU: a footer copy at offset 0 is read even when shorter
        ByteBuffer head = ByteBuffer.allocate(VpcFields.FOOTER_LENGTH);
        storage.read(head, 0);
        head.flip();
        long footerOffset = 0;
        boolean fixed = false;
        if (head.remaining() < VpcFields.FOOTER_LENGTH || head.getLong(0) != VpcFields.FOOTER_COOKIE) {
            if (fileSize < VpcFields.FOOTER_LENGTH) {
                throw new CorruptImageException(name, 0, "File too small for a VHD header: the file has " + fileSize
                        + " bytes");
            }
            footerOffset = fileSize - VpcFields.FOOTER_LENGTH;
            head.clear();
            storage.read(head, footerOffset);
            head.flip();
            if (head.remaining() < VpcFields.FOOTER_LENGTH || head.getLong(0) != VpcFields.FOOTER_COOKIE
                    || head.getInt(60) != VpcFields.TYPE_FIXED) {
                throw new CorruptImageException(name, footerOffset, "invalid VPC image: no footer (\"conectix\") at "
                        + "offset 0, and no fixed disk's footer at the end of the file");
            }
            fixed = true;
        } else if (fileSize == VpcFields.FOOTER_LENGTH && head.getInt(60) == VpcFields.TYPE_FIXED) {
            fixed = true; // an empty fixed disk is its footer alone (QEMU takes it for a dynamic one, and fails)
        }
        VpcFooter footer = VpcFooter.parse(head, name, footerOffset);
        long sectors = footer.sectors(calc);
        if (sectors > VpcGeometry.MAX_SECTORS) {
            throw new ImageLimitException(name, footerOffset + 48, "File too large: the footer gives " + sectors
                    + " sectors, more than the 2040 GiB (" + VpcGeometry.MAX_SECTORS + " sectors) VHD allows");
        }
        long size = sectors * VpcFields.SECTOR;
        if (fixed) {
            return new VpcFixedInstance(storage, size, footerOffset, writable);
        }
        byte[] footerBytes = head.array().clone();
        long headerOffset = footer.dataOffset();
        // past the end of the file the header reads as zeroes (and has no magic), as in QEMU
        if (headerOffset < 0 || headerOffset > Long.MAX_VALUE - VpcFields.HEADER_LENGTH) {
            throw new CorruptImageException(name, 16, "Error reading dynamic VHD header: its offset "
                    + Long.toUnsignedString(headerOffset) + " is past 2^63");
        }
        ByteBuffer hb = ByteBuffer.allocate(VpcFields.HEADER_LENGTH);
        if (headerOffset < fileSize) {
            storage.read(hb, headerOffset);
        }
        VpcDynamicHeader header = VpcDynamicHeader.parse(hb.clear(), name, headerOffset);
        if (!header.checksumValid()) {
            LOG.warn("{}: the dynamic disk header's checksum is wrong (offset {}); reading it anyway, as QEMU does",
                    name, headerOffset + 36);
        }
        long blockSize = header.blockSize();
        if (blockSize < VpcFields.SECTOR || Long.bitCount(blockSize) != 1) {
            throw new CorruptImageException(name, headerOffset + 32, "Invalid block size " + blockSize);
        }
        long maxEntries = header.maxTableEntries();
        if (maxEntries * blockSize < size) {
            throw new CorruptImageException(name, headerOffset + 28, "Page table too small: " + maxEntries
                    + " blocks of " + blockSize + " bytes do not cover the virtual size of " + size + " bytes");
        }
        if (maxEntries > VpcBat.MAX_TABLE_ENTRIES) {
            throw new ImageLimitException(name, headerOffset + 28, "Max Table Entries too large (" + maxEntries + ")");
        }
        int bitmapLength = VpcFields.bitmapLength(blockSize);
        boolean differencing = footer.diskType() == VpcFields.TYPE_DIFFERENCING;
        if (differencing && bitmapLength * 8L < blockSize / VpcFields.SECTOR) {
            throw new UnsupportedFeatureException(name, Feature.OTHER, "differencing blocks under 4 KiB",
                    "a differencing disk with blocks of " + blockSize + " bytes has no room for their sector bitmaps");
        }
        long needed = (size + blockSize - 1) / blockSize;
        long[] dataEnd = new long[1];
        VpcBat bat = VpcBat.load(storage, header.tableOffset(), maxEntries, needed, blockSize, bitmapLength, fileSize,
                dataEnd);
        String parent = differencing ? VpcParentNames.parentName(storage, header, headerOffset, fileSize) : null;
        if (writable) {
            List<long[]> metadata = metadata(header, headerOffset, maxEntries);
            checkLayout(name, bat, blockSize + bitmapLength, metadata);
            // new blocks go after the metadata too (QEMU looks at the BAT and the blocks only, and would write a
            // block over parent locators stored after them)
            for (long[] m : metadata) {
                dataEnd[0] = Math.max(dataEnd[0], VpcFields.roundUp(m[1], VpcFields.SECTOR));
            }
        }
        VpcDynamicInstance instance = new VpcDynamicInstance(storage, footerBytes, writable, differencing, parent, size,
                blockSize, bitmapLength, bat, dataEnd[0]);
        if (writable) {
            instance.repairTail();
        }
        return instance;
    }

    /** The metadata ranges {@code {start, end}}: the footer copy, the header, the BAT, the locators' data. */
    private static List<long[]> metadata(VpcDynamicHeader header, long headerOffset, long maxEntries) {
        List<long[]> out = new ArrayList<>();
        out.add(new long[] {0, VpcFields.FOOTER_LENGTH});
        out.add(new long[] {headerOffset, headerOffset + VpcFields.HEADER_LENGTH});
        out.add(new long[] {header.tableOffset(), header.tableOffset() + maxEntries * 4});
        for (VpcParentLocator l : header.locators()) {
            if (l.used() && l.dataOffset() >= 0) {
                out.add(new long[] {l.dataOffset(), l.dataOffset() + l.dataLength()});
            }
        }
        return out;
    }

    /**
     * Refuses a writable image whose blocks overlap its metadata or each other: writes into one would change
     * the other (QEMU does not check, and would).
     */
    private static void checkLayout(String name, VpcBat bat, long span, List<long[]> metadata)
            throws CorruptImageException {
        long[] starts = new long[bat.length()];
        int n = 0;
        for (int i = 0; i < bat.length(); i++) {
            if (bat.allocated(i)) {
                starts[n++] = bat.bitmapOffset(i);
            }
        }
        Arrays.sort(starts, 0, n);
        for (int i = 1; i < n; i++) {
            if (starts[i] < starts[i - 1] + span) {
                throw new CorruptImageException(name, starts[i], "two BAT entries name overlapping blocks (at offsets "
                        + starts[i - 1] + " and " + starts[i] + "); refusing to write to this image");
            }
        }
        for (long[] m : metadata) {
            // the last block starting before the metadata's end must end before its start
            int i = Arrays.binarySearch(starts, 0, n, m[1]);
            int before = (i >= 0 ? i : -i - 1) - 1;
            if (before >= 0 && starts[before] + span > m[0] && m[1] > m[0]) {
                throw new CorruptImageException(name, starts[before], "a block at offset " + starts[before]
                        + " overlaps metadata at offsets " + m[0] + ".." + m[1] + "; refusing to write to this image");
            }
        }
    }
}
