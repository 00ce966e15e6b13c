package imago.vhdx.internal;

import imago.api.Preallocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.UUID;
import java.util.function.Supplier;

/**
 * Writes a new VHDX laid out as qemu-img 7.2 lays it out: the file type identifier, two headers (sequence numbers
 * n and n + 1), two identical region tables, the log at 1 MiB, the BAT after it (rounded up to 1 MiB), the
 * metadata region (1 MiB: its table, then file parameters, virtual disk size, page 83 data, logical and physical
 * sector size from 64 KiB on), and the data area 5 MiB after the metadata region's start. Only the GUIDs, the
 * sequence number, the creator string and the checksums that cover them differ from qemu-img's file.
 */
final class VhdxCreate {
    /** The creator string in the file type identifier. */
    static final String CREATOR = "imago";

    private VhdxCreate() {
    }

    /**
     * The layout of a new image.
     *
     * @param size the virtual size (a multiple of 512)
     * @param blockSize the payload block size
     * @param logSize the log's length
     * @param fixed whether the data area is allocated with the file
     * @param blockStateZero whether the BAT marks unwritten blocks zero rather than not present (QEMU's default)
     */
    record Plan(long size, long blockSize, long logSize, boolean fixed, boolean blockStateZero) {
        long logOffset() {
            return VhdxFields.HEADER_SECTION;
        }

        long batOffset() {
            return logOffset() + logSize;
        }

        long blocks() {
            return (size + blockSize - 1) / blockSize;
        }

        long chunkRatio() {
            return VhdxBat.chunkRatio(blockSize, 512);
        }

        long batLength() {
            return VhdxFields.roundUp(VhdxBat.entryCount(blocks(), chunkRatio(), false) * 8, VhdxFields.MIB);
        }

        long metadataOffset() {
            return batOffset() + batLength();
        }

        long dataOffset() {
            return metadataOffset() + 5 * VhdxFields.MIB;
        }

        long fileSize() {
            return dataOffset() + (fixed ? size : 0);
        }
    }

    /**
     * qemu-img's plan for {@code requestedSize} and the options: the size rounded up to a sector, the block size
     * rounded up to 1 MiB and at most 256 MiB (0: by the size, as QEMU picks it), the log size rounded up to 1 MiB.
     *
     * @throws IllegalArgumentException with qemu-img's message where it refuses
     */
    static Plan plan(long requestedSize, long blockSize, long logSize, boolean fixed, boolean blockStateZero) {
        if (requestedSize > VhdxFields.MAX_SIZE) {
            throw new IllegalArgumentException("Image size too large; max of 64TB");
        }
        long size = VhdxFields.roundUp(requestedSize, 512);
        long log = VhdxFields.roundUp(logSize, VhdxFields.MIB);
        if (log == 0 || log > 0xFFFF_FFFFL - VhdxFields.MIB) {
            throw new IllegalArgumentException("Log size must be a multiple of 1 MB");
        }
        long bs = blockSize;
        if (bs == 0) {
            bs = size > 32L << 40 ? 64 * VhdxFields.MIB : size > 100L << 30 ? 32 * VhdxFields.MIB
                    : size > 1L << 30 ? 16 * VhdxFields.MIB : 8 * VhdxFields.MIB;
        }
        bs = Math.min(VhdxFields.roundUp(bs, VhdxFields.MIB), VhdxFields.MAX_BLOCK_SIZE);
        if (Long.bitCount(bs) != 1) {
            throw new IllegalArgumentException("Block size must be a power of two");
        }
        return new Plan(size, bs, log, fixed, blockStateZero);
    }

    /**
     * Writes the image of {@code plan} to the empty {@code storage}.
     *
     * @param guids where the file write, data write and page 83 GUIDs come from (in that order)
     * @param sequence the first header's sequence number
     */
    static void create(Storage storage, Plan plan, Supplier<UUID> guids, long sequence) throws IOException {
        storage.resize(plan.fileSize(), Preallocation.OFF);
        ByteBuffer id = VhdxFields.le(VhdxFields.REGION_TABLE_LENGTH);
        id.put(0, VhdxFields.FILE_SIGNATURE);
        id.put(8, CREATOR.getBytes(StandardCharsets.UTF_16LE));
        storage.write(id, 0);
        UUID fileWrite = guids.get();
        UUID dataWrite = guids.get();
        UUID page83 = guids.get();
        for (int i = 0; i < 2; i++) {
            VhdxHeader h = new VhdxHeader(sequence + i, fileWrite, dataWrite, VhdxFields.NIL, 0, 1, plan.logSize(),
                    plan.logOffset());
            storage.write(h.toBytes(), VhdxFields.HEADER_OFFSETS[i]);
        }
        VhdxRegionTable regions = new VhdxRegionTable(List.of(
                new VhdxRegionTable.Entry(VhdxFields.BAT_REGION, plan.batOffset(), plan.batLength(), false),
                new VhdxRegionTable.Entry(VhdxFields.METADATA_REGION, plan.metadataOffset(), VhdxFields.MIB, false)));
        for (long at : VhdxFields.REGION_TABLE_OFFSETS) {
            storage.write(regions.toBytes(), at);
        }
        storage.write(metadata(plan, page83), plan.metadataOffset());
        writeBat(storage, plan);
        storage.sync();
    }

    private static ByteBuffer metadata(Plan plan, UUID page83) {
        ByteBuffer m = VhdxFields.le(VhdxMetadata.TABLE_LENGTH + 64);
        m.putLong(0, VhdxFields.METADATA_SIGNATURE);
        m.putShort(10, (short) 5);
        Object[][] items = {{VhdxFields.FILE_PARAMETERS, 0, 8, 4}, {VhdxFields.VIRTUAL_DISK_SIZE, 8, 8, 6},
            {VhdxFields.PAGE83_DATA, 16, 16, 6}, {VhdxFields.LOGICAL_SECTOR_SIZE, 32, 4, 6},
            {VhdxFields.PHYSICAL_SECTOR_SIZE, 36, 4, 6}};
        for (int i = 0; i < items.length; i++) {
            int e = 32 + 32 * i;
            VhdxFields.putGuid(m, e, (UUID) items[i][0]);
            m.putInt(e + 16, VhdxMetadata.TABLE_LENGTH + (int) items[i][1]);
            m.putInt(e + 20, (int) items[i][2]);
            m.putInt(e + 24, (int) items[i][3]);
        }
        int d = VhdxMetadata.TABLE_LENGTH;
        m.putInt(d, (int) plan.blockSize());
        m.putInt(d + 4, plan.fixed() ? 1 : 0);
        m.putLong(d + 8, plan.size());
        VhdxFields.putGuid(m, d + 16, page83);
        m.putInt(d + 32, 512);
        m.putInt(d + 36, 512);
        return m;
    }

    /** The BAT's entries, 1 MiB at a time, skipping what stays zero in the new (sparse) file. */
    private static void writeBat(Storage storage, Plan plan) throws IOException {
        long blocks = plan.blocks();
        long ratio = plan.chunkRatio();
        if (!plan.fixed() && !plan.blockStateZero()) {
            return;
        }
        long count = VhdxBat.entryCount(blocks, ratio, false);
        ByteBuffer b = VhdxFields.le((int) VhdxFields.MIB);
        int perBuffer = b.capacity() / 8;
        for (long first = 0; first < count; first += perBuffer) {
            b.clear();
            int n = (int) Math.min(perBuffer, count - first);
            for (int i = 0; i < n; i++) {
                long index = first + i;
                long value = 0;
                if (index % (ratio + 1) != ratio) {
                    long block = index - index / (ratio + 1);
                    value = plan.blockStateZero() ? VhdxFields.ZERO
                            : VhdxBat.entry(VhdxFields.FULLY_PRESENT, plan.dataOffset() + block * plan.blockSize());
                }
                b.putLong(i * 8, value);
            }
            b.limit(n * 8);
            storage.write(b, plan.batOffset() + first * 8);
        }
    }
}
