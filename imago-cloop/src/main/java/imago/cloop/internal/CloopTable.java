package imago.cloop.internal;

import imago.api.CorruptImageException;
import imago.api.ImageLimitException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A validated cloop header and offsets table (see the package documentation).
 *
 * @param blockSize the uncompressed size of every block
 * @param offsets {@code blocks + 1} file offsets: block {@code i} is {@code [offsets[i], offsets[i + 1])}
 */
record CloopTable(int blockSize, long[] offsets) {
    static final int HEADER = 128;
    static final int TABLE = HEADER + 8;
    /** QEMU's bound on the block size (and so on the buffer a block inflates into). */
    static final int MAX_BLOCK_SIZE = 64 << 20;
    /** QEMU's bound on the offsets table. */
    static final long MAX_TABLE_BYTES = 512L << 20;
    static final byte[] MAGIC_V2 = ("#!/bin/sh\n#V2.0 Format\n"
            + "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n").getBytes(StandardCharsets.US_ASCII);

    /** Whether {@code head} starts with the version 2.0 script, as QEMU's probe asks. */
    static boolean recognised(ByteBuffer head) {
        if (head.remaining() < MAGIC_V2.length) {
            return false;
        }
        byte[] b = new byte[MAGIC_V2.length];
        head.duplicate().get(b);
        return Arrays.equals(b, MAGIC_V2);
    }

    /** How many blocks the image holds. */
    int blocks() {
        return offsets.length - 1;
    }

    /**
     * Reads and checks the header and the offsets table of {@code storage}.
     *
     * @throws CorruptImageException for sizes and offsets QEMU refuses, and tables past the end of the file
     * @throws ImageLimitException for a table larger than QEMU reads
     */
    static CloopTable read(Storage storage) throws IOException {
        String resource = storage.name();
        long fileSize = storage.size();
        ByteBuffer head = ByteBuffer.allocate(8);
        storage.read(head, HEADER);
        long blockSize = Integer.toUnsignedLong(head.getInt(0));
        long blocks = Integer.toUnsignedLong(head.getInt(4));
        if (blockSize % 512 != 0) {
            throw new CorruptImageException(resource, HEADER, "block_size " + blockSize + " must be a multiple of 512");
        }
        if (blockSize == 0) {
            throw new CorruptImageException(resource, HEADER, "block_size cannot be zero");
        }
        if (blockSize > MAX_BLOCK_SIZE) {
            throw new CorruptImageException(resource, HEADER, "block_size " + blockSize + " must be "
                    + (MAX_BLOCK_SIZE >> 20) + " MB or less");
        }
        long maxBlocks = 0xFFFF_FFFFL / 8;
        if (blocks > maxBlocks) {
            throw new CorruptImageException(resource, HEADER + 4, "n_blocks " + blocks + " must be " + maxBlocks
                    + " or less");
        }
        long tableBytes = (blocks + 1) * 8;
        if (tableBytes > MAX_TABLE_BYTES) {
            throw new ImageLimitException(resource, HEADER + 4,
                    "image requires too many offsets, try increasing block size");
        }
        if (TABLE + tableBytes > fileSize) {
            throw new CorruptImageException(resource, TABLE, "the offsets table of " + (blocks + 1)
                    + " entries ends past the end of the file (" + fileSize + " bytes)");
        }
        ByteBuffer table = ByteBuffer.allocate((int) tableBytes);
        storage.read(table, TABLE);
        long[] offsets = new long[(int) (blocks + 1)];
        table.flip().asLongBuffer().get(offsets);
        for (int i = 1; i < offsets.length; i++) {
            if (Long.compareUnsigned(offsets[i], offsets[i - 1]) < 0) {
                throw new CorruptImageException(resource, TABLE + 8L * i, "offsets not monotonically increasing at"
                        + " index " + i + ", image file is corrupt");
            }
            if (Long.compareUnsigned(offsets[i] - offsets[i - 1], 2L * MAX_BLOCK_SIZE) > 0) {
                throw new CorruptImageException(resource, TABLE + 8L * i, "invalid compressed block size at index "
                        + i + ", image file is corrupt");
            }
        }
        return new CloopTable((int) blockSize, offsets);
    }
}
