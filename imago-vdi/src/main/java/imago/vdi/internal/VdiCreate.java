package imago.vdi.internal;

import imago.api.Preallocation;
import imago.api.spi.BlockTable;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * Lays out a new VDI image as qemu-img 7.2 does: the size rounded up to a sector, 1 MiB blocks, the header, then
 * the block map at 512 padded to a sector, then the blocks. A dynamic image's entries are all unallocated and its
 * file ends after the map; a static image's entry {@code i} names block {@code i} and its file is as long as all
 * of them (sparse).
 */
final class VdiCreate {
    private VdiCreate() {
    }

    static void create(Storage storage, long requested, boolean fixed, UUID image, UUID lastSnap)
            throws IOException {
        if (requested < 0) {
            throw new IllegalArgumentException("Image size must be non-negative");
        }
        // rounded up as QEMU rounds it: a size near 2^63 wraps negative, and is refused as QEMU refuses it
        long size = (requested + VdiHeader.SECTOR - 1) & -VdiHeader.SECTOR;
        long max = VdiHeader.MAX_BLOCKS * VdiHeader.BLOCK_SIZE;
        if (size < 0 || size > max) {
            throw new IllegalArgumentException("Unsupported VDI image size (size is 0x" + Long.toHexString(size)
                    + ", max supported is 0x" + Long.toHexString(max) + ")");
        }
        long blocks = (size + VdiHeader.BLOCK_SIZE - 1) / VdiHeader.BLOCK_SIZE;
        if (blocks > BlockTable.MAX_ENTRIES) {
            throw new IllegalArgumentException("a VDI image of " + size + " bytes needs " + blocks
                    + " blocks, more than imago's limit of " + BlockTable.MAX_ENTRIES);
        }
        int[] entries = new int[(int) blocks];
        for (int i = 0; i < entries.length; i++) {
            entries[i] = fixed ? i : VdiHeader.UNALLOCATED;
        }
        ByteBuffer map = BlockTable.encode(entries, ByteOrder.LITTLE_ENDIAN);
        long offsetData = VdiHeader.LENGTH + map.capacity();
        storage.write(ByteBuffer.wrap(VdiHeader.create(fixed, size, blocks, offsetData, image, lastSnap)), 0);
        storage.write(map, VdiHeader.LENGTH);
        if (fixed) {
            storage.resize(offsetData + blocks * VdiHeader.BLOCK_SIZE, Preallocation.OFF);
        }
    }
}
