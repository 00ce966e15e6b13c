package imago.qcow2.internal;

import java.util.List;

/**
 * The bits of L1 and L2 entries and of extended L2 subcluster bitmaps, and the decoding of compressed cluster
 * descriptors (see the layout in the package documentation).
 */
final class Qcow2Entries {
    /** L1 entry: bits 0-8 and 56-62 are reserved. */
    static final long L1E_RESERVED = 0x7F00_0000_0000_01FFL;
    /** L1/L2 offset field: bits 9-55. */
    static final long OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00L;
    /** L2 entry (standard cluster): bits 1-8 and 56-61 are reserved (bit 0 with extended L2 too). */
    static final long L2E_RESERVED = 0x3F00_0000_0000_01FEL;
    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    static final long ZERO_FLAG = 1L;
    /** Extended L2 bitmap: the 32 "subcluster allocated" bits. */
    static final long SUB_ALLOC_ALL = 0xFFFF_FFFFL;
    /** Extended L2 bitmap: the 32 "subcluster reads as zero" bits. */
    static final long SUB_ZERO_ALL = 0xFFFF_FFFF_0000_0000L;

    private Qcow2Entries() {
    }

    /** Where the offset field of a compressed descriptor ends: x = 62 - (cluster_bits - 8). */
    private static int compressedShift(int clusterBits) {
        return 62 - (clusterBits - 8);
    }

    /** The byte offset of the compressed data of descriptor {@code entry}. */
    static long compressedHost(long entry, int clusterBits) {
        return entry & ((1L << compressedShift(clusterBits)) - 1);
    }

    /** The 512-byte sectors of compressed data that descriptor {@code entry} names (its field plus one). */
    static long compressedSectors(long entry, int clusterBits) {
        return ((entry >>> compressedShift(clusterBits)) & ((1L << (clusterBits - 8)) - 1)) + 1;
    }

    /** The descriptor of {@code n} compressed bytes at {@code host}: the sector field counts sectors after the first. */
    static long compressedEntry(long host, int n, int clusterBits) {
        long sectors = ((host + n - 1) >>> 9) - (host >>> 9);
        return COMPRESSED | host | (sectors << compressedShift(clusterBits));
    }

    /** Adds the host clusters that compressed L2 entry {@code entry} holds a reference to. */
    static void compressedClusters(long entry, int clusterBits, List<Long> out) {
        long host = compressedHost(entry, clusterBits);
        long start = host & ~511L;
        long end = start + compressedSectors(entry, clusterBits) * 512;
        for (long c = start >>> clusterBits; c <= (end - 1) >>> clusterBits; c++) {
            out.add(c);
        }
    }

    /** The "allocated" bits of subclusters {@code from} (inclusive) to {@code to} (exclusive). */
    static long subclusterMask(int from, int to) {
        return (SUB_ALLOC_ALL >>> (32 - (to - from))) << from;
    }
}
