package imago.vpc.internal;

import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.UUID;

/**
 * Writes new VHDs byte for byte as qemu-img 7.2 does, but for the time stamp and the unique id: the size rounded
 * up to a sector and, unless {@code force_size}, to the smallest CHS geometry that covers it (creator
 * {@code qemu}); with {@code force_size} the largest geometry and the size as given (creator {@code qem2}).
 * A dynamic disk is the footer copy, the header, the BAT (all unused, whole sectors) and the footer; a fixed
 * disk the (sparse) data area and the footer.
 */
final class VpcCreate {
    /** The block size of new dynamic disks. */
    static final int BLOCK_SIZE = 2 << 20;
    /** How much of a new fixed disk's data area is written with zeroes, as QEMU's file driver writes it. */
    static final int FIRST_BLOCK = 4096;
    /** Where qemu-img puts the BAT. */
    static final int TABLE_OFFSET = 3 * VpcFields.SECTOR;

    /**
     * The layout of a new image.
     *
     * @param totalSectors the virtual size in sectors
     * @param geometry the geometry to record
     * @param forceSize whether the size is kept as given (creator "qem2")
     */
    record Plan(long totalSectors, VpcGeometry geometry, boolean forceSize) {
        long size() {
            return totalSectors * VpcFields.SECTOR;
        }
    }

    private VpcCreate() {
    }

    /**
     * The size and geometry qemu-img gives an image of {@code requested} bytes.
     *
     * @throws ImageLimitException if the size is larger than 2040 GiB (qemu-img's "The image size is too
     *         large for file format 'vpc'", from EFBIG)
     */
    static Plan plan(long requested, boolean forceSize) throws ImageLimitException {
        return plan("vpc", requested, forceSize);
    }

    /** As {@link #plan(long, boolean)}, a refusal naming {@code resource}. */
    static Plan plan(String resource, long requested, boolean forceSize) throws ImageLimitException {
        if (requested < 0) {
            throw new IllegalArgumentException("Image size must be non-negative, got " + requested);
        }
        if (requested > Long.MAX_VALUE - VpcFields.SECTOR) {
            throw new ImageLimitException(resource, "The image size is too large for file format 'vpc'");
        }
        long size = VpcFields.roundUp(requested, VpcFields.SECTOR);
        VpcGeometry g = forceSize ? VpcGeometry.MAX : VpcGeometry.covering(size / VpcFields.SECTOR);
        long total = g.sectors() == VpcGeometry.MAX_SECTORS_CHS ? size / VpcFields.SECTOR : g.sectors();
        if (total > VpcGeometry.MAX_SECTORS) {
            throw new ImageLimitException(resource, "The image size is too large for file format 'vpc' (at most 2040 GiB)");
        }
        return new Plan(total, g, forceSize);
    }

    /** Writes a new image of {@code plan} to the empty {@code storage}. */
    static void create(Storage storage, Plan plan, boolean fixed, long timestamp, UUID uniqueId) throws IOException {
        long size = plan.size();
        VpcFooter footer = new VpcFooter(2, 0x0001_0000, fixed ? VpcFields.NO_OFFSET : VpcFields.FOOTER_LENGTH,
                timestamp, plan.forceSize() ? "qem2" : "qemu", 0x0005_0003, "Wi2k", size, size, plan.geometry(),
                fixed ? VpcFields.TYPE_FIXED : VpcFields.TYPE_DYNAMIC, uniqueId, false);
        ByteBuffer footerBytes = ByteBuffer.allocate(VpcFields.FOOTER_LENGTH);
        footer.writeTo(footerBytes);
        if (fixed) {
            storage.resize(size + VpcFields.FOOTER_LENGTH, Preallocation.OFF);
            if (size > 0) {
                // as QEMU's file driver does on create (allocate_first_block): map then shows that block as data
                storage.write(ByteBuffer.allocate((int) Math.min(FIRST_BLOCK, size)), 0);
            }
            storage.write(footerBytes.flip(), size);
            return;
        }
        long entries = (plan.totalSectors() + BLOCK_SIZE / VpcFields.SECTOR - 1) / (BLOCK_SIZE / VpcFields.SECTOR);
        int batBytes = (int) VpcFields.roundUp(entries * 4, VpcFields.SECTOR);
        ByteBuffer all = ByteBuffer.allocate(TABLE_OFFSET + batBytes + VpcFields.FOOTER_LENGTH);
        all.put(footerBytes.flip());
        VpcDynamicHeader.writeTo(all, TABLE_OFFSET, entries, BLOCK_SIZE);
        for (int i = 0; i < batBytes; i++) {
            all.put((byte) 0xFF);
        }
        all.put(footerBytes.flip());
        storage.write(all.flip(), 0);
    }

    /** The time stamp of an image created now: seconds since 2000-01-01 UTC, as an unsigned 32-bit value. */
    static long now() {
        return (System.currentTimeMillis() / 1000 - VpcFields.EPOCH_2000) & 0xFFFF_FFFFL;
    }
}
