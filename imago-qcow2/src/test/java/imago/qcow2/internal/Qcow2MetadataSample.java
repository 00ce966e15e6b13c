package imago.qcow2.internal;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A valid qcow2 image and the byte ranges of its metadata, which the property tests damage at random
 * ({@link Qcow2MutationPropertyTest}, {@link Qcow2CheckPropertyTest}).
 *
 * @param name the image's name, for messages
 * @param bytes the image file
 * @param regions the metadata ranges, each {offset, length}
 */
record Qcow2MetadataSample(String name, byte[] bytes, List<long[]> regions) {

    /** The cluster size the header of {@code bytes} gives. */
    static int clusterSize(byte[] bytes) {
        return 1 << ByteBuffer.wrap(bytes).getInt(20);
    }

    /**
     * The sample of {@code bytes}: the {@code header} ranges, then the active L1 table and every L2 table it points
     * to (whole clusters), the refcount table's first 64 bytes and the first {@code refblockBytes} of its first
     * refcount block, and with snapshots the snapshot table's first 64 bytes and the first snapshot's L1 table.
     */
    static Qcow2MetadataSample of(String name, byte[] bytes, List<long[]> header, int refblockBytes) {
        ByteBuffer bb = ByteBuffer.wrap(bytes);
        int cs = clusterSize(bytes);
        List<long[]> regions = new ArrayList<>(header);
        long l1 = bb.getLong(40);
        int l1Size = bb.getInt(36);
        regions.add(new long[] {l1, l1Size * 8L});
        for (int i = 0; i < l1Size; i++) {
            long l2 = bb.getLong((int) l1 + 8 * i) & Qcow2Entries.OFFSET_MASK;
            if (l2 != 0) {
                regions.add(new long[] {l2, cs});
            }
        }
        long reftable = bb.getLong(48);
        regions.add(new long[] {reftable, 64});
        long refblock = bb.getLong((int) reftable) & ~511L;
        if (refblock != 0) {
            regions.add(new long[] {refblock, refblockBytes});
        }
        if (bb.getInt(60) > 0) {
            long table = bb.getLong(64);
            regions.add(new long[] {table, 64});
            long snapL1 = bb.getLong((int) table);
            regions.add(new long[] {snapL1, bb.getInt((int) table + 8) * 8L});
        }
        return new Qcow2MetadataSample(name, bytes, regions);
    }

    /**
     * A copy of the bytes with the mutations {@code picks} encode: each seeds a byte of a metadata range and what
     * becomes of it (a random value, one bit flipped, zero or 0xff).
     */
    byte[] mutate(List<Integer> picks) {
        byte[] b = bytes.clone();
        for (int pick : picks) {
            Random r = new Random(pick);
            long[] region = regions.get(r.nextInt(regions.size()));
            int at = (int) (region[0] + r.nextInt((int) region[1]));
            if (at >= b.length) {
                continue;
            }
            switch (r.nextInt(4)) {
                case 0 -> b[at] = (byte) r.nextInt(256);
                case 1 -> b[at] ^= (byte) (1 << r.nextInt(8));
                case 2 -> b[at] = 0;
                default -> b[at] = (byte) 0xff;
            }
        }
        return b;
    }
}
