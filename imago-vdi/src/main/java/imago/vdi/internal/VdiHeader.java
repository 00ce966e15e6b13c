package imago.vdi.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * The 512-byte VDI header (version 1.1; layout in the package documentation), little-endian.
 *
 * @param imageType {@link #TYPE_DYNAMIC} or {@link #TYPE_STATIC}
 * @param offsetBmap where the block map starts
 * @param offsetData where block 0 starts
 * @param diskSize the virtual size as stored (QEMU rounds it up to a sector)
 * @param blockSize bytes per block (QEMU accepts 1 MiB only)
 * @param blocksInImage the block map's entries
 * @param blocksAllocated how many entries name a block
 */
record VdiHeader(int imageType, long offsetBmap, long offsetData, long diskSize, long blockSize,
        long blocksInImage, long blocksAllocated) {
    static final int LENGTH = 512;
    static final int SECTOR = 512;
    static final int SIGNATURE = 0xbeda107f;
    static final int VERSION_1_1 = 0x00010001;
    static final int TYPE_DYNAMIC = 1;
    static final int TYPE_STATIC = 2;
    static final long BLOCK_SIZE = 1 << 20;
    /**
     * QEMU 7.2's limit on the block map's entries: as many as fit in its largest request (0x7ffffe00 bytes), so
     * that disks of more than 0x1fffff8000000 bytes are refused, as qemu-img 7.2 refuses them.
     */
    static final long MAX_BLOCKS = 0x1fff_ff80L;
    /** An entry naming no block: the block reads as zero. */
    static final int UNALLOCATED = 0xFFFF_FFFF;
    /** An entry for a block that reads as zero (written by VirtualBox when it discards a block). */
    static final int ZERO = 0xFFFF_FFFE;
    static final String QEMU_TEXT = "<<< QEMU VM Virtual Disk Image >>>\n";

    static final int SIGNATURE_AT = 0x40;
    static final int BLOCKS_ALLOCATED_AT = 0x184;
    static final int UUID_IMAGE_AT = 0x188;
    static final int UUID_LAST_SNAP_AT = 0x198;
    static final int UUID_LINK_AT = 0x1a8;
    static final int UUID_PARENT_AT = 0x1b8;

    /**
     * Parses and validates a header as QEMU 7.2's vdi driver does, with its messages.
     *
     * @throws CorruptImageException if the header is short or not a VDI header
     * @throws UnsupportedFeatureException for what QEMU does not support either (other versions, block sizes,
     *         differencing images)
     * @throws ImageLimitException if the image is larger than QEMU allows
     */
    static VdiHeader parse(ByteBuffer head, String name) throws CorruptImageException, UnsupportedFeatureException,
            ImageLimitException {
        if (head.remaining() < LENGTH) {
            throw new CorruptImageException(name, head.remaining(), "the file is too short for a VDI header ("
                    + head.remaining() + " of " + LENGTH + " bytes)");
        }
        ByteBuffer b = head.slice(head.position(), LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        int signature = b.getInt(SIGNATURE_AT);
        int version = b.getInt(0x44);
        long offsetBmap = Integer.toUnsignedLong(b.getInt(0x154));
        long offsetData = Integer.toUnsignedLong(b.getInt(0x158));
        long sectorSize = Integer.toUnsignedLong(b.getInt(0x168));
        long diskSize = b.getLong(0x170);
        long blockSize = Integer.toUnsignedLong(b.getInt(0x178));
        long blocks = Integer.toUnsignedLong(b.getInt(0x180));
        if (diskSize < 0 || Long.compareUnsigned(diskSize, MAX_BLOCKS * BLOCK_SIZE) > 0) {
            throw new ImageLimitException(name, 0x170, "Unsupported VDI image size (size is 0x"
                    + Long.toHexString(diskSize) + ", max supported is 0x" + Long.toHexString(MAX_BLOCKS * BLOCK_SIZE)
                    + ")");
        }
        // VBoxManage convertfromraw can write sizes off a sector: QEMU reads them rounded up
        diskSize = (diskSize + SECTOR - 1) / SECTOR * SECTOR;
        if (signature != SIGNATURE) {
            throw new CorruptImageException(name, SIGNATURE_AT, "Image not in VDI format (bad signature "
                    + String.format("%08x", signature) + ")");
        }
        if (version != VERSION_1_1) {
            throw unsupported(name, 0x44, "version " + (version >>> 16) + "." + (version & 0xffff));
        }
        if (offsetBmap % SECTOR != 0) {
            throw unsupported(name, 0x154, "unaligned block map offset 0x" + Long.toHexString(offsetBmap));
        }
        if (offsetData % SECTOR != 0) {
            throw unsupported(name, 0x158, "unaligned data offset 0x" + Long.toHexString(offsetData));
        }
        if (sectorSize != SECTOR) {
            throw unsupported(name, 0x168, "sector size " + sectorSize + " is not " + SECTOR);
        }
        if (blockSize != BLOCK_SIZE) {
            throw unsupported(name, 0x178, "block size " + blockSize + " is not " + BLOCK_SIZE);
        }
        if (diskSize > blocks * blockSize) {
            throw unsupported(name, 0x170, "disk size " + diskSize + ", image bitmap has room for "
                    + blocks * blockSize);
        }
        if (!isNull(b, UUID_LINK_AT)) {
            throw unsupported(name, UUID_LINK_AT, "non-NULL link UUID");
        }
        if (!isNull(b, UUID_PARENT_AT)) {
            throw unsupported(name, UUID_PARENT_AT, "non-NULL parent UUID");
        }
        if (blocks > MAX_BLOCKS) {
            throw unsupported(name, 0x180, "too many blocks " + blocks + ", max is " + MAX_BLOCKS);
        }
        return new VdiHeader(b.getInt(0x4c), offsetBmap, offsetData, diskSize, blockSize, blocks,
                Integer.toUnsignedLong(b.getInt(BLOCKS_ALLOCATED_AT)));
    }

    /** QEMU's words; {@code offset} (the header field's) goes in the feature's name, for library users. */
    private static UnsupportedFeatureException unsupported(String name, long offset, String what) {
        return new UnsupportedFeatureException(name, Feature.OTHER, "VDI: " + what + " (header offset " + offset + ")",
                "unsupported VDI image (" + what + ")");
    }

    private static boolean isNull(ByteBuffer b, int at) {
        return b.getLong(at) == 0 && b.getLong(at + 8) == 0;
    }

    /**
     * A new header as qemu-img 7.2 writes it: QEMU's text, version 1.1, header size 0x180, the block map at 512,
     * no geometry, and the two UUIDs.
     */
    static byte[] create(boolean fixed, long diskSize, long blocks, long offsetData, UUID image, UUID lastSnap) {
        ByteBuffer b = ByteBuffer.allocate(LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, QEMU_TEXT.getBytes(StandardCharsets.US_ASCII));
        b.putInt(SIGNATURE_AT, SIGNATURE).putInt(0x44, VERSION_1_1).putInt(0x48, 0x180)
                .putInt(0x4c, fixed ? TYPE_STATIC : TYPE_DYNAMIC)
                .putInt(0x154, LENGTH).putInt(0x158, (int) offsetData).putInt(0x168, SECTOR)
                .putLong(0x170, diskSize).putInt(0x178, (int) BLOCK_SIZE).putInt(0x180, (int) blocks)
                .putInt(BLOCKS_ALLOCATED_AT, fixed ? (int) blocks : 0);
        ByteBuffer be = ByteBuffer.wrap(b.array());
        be.putLong(UUID_IMAGE_AT, image.getMostSignificantBits()).putLong(UUID_IMAGE_AT + 8,
                image.getLeastSignificantBits());
        be.putLong(UUID_LAST_SNAP_AT, lastSnap.getMostSignificantBits()).putLong(UUID_LAST_SNAP_AT + 8,
                lastSnap.getLeastSignificantBits());
        return b.array();
    }

    /** Whether the image is static (every block allocated at creation). */
    boolean isStatic() {
        return imageType == TYPE_STATIC;
    }
}
