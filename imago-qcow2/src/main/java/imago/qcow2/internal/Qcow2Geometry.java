package imago.qcow2.internal;

/**
 * The arithmetic of one image's clusters: where a guest offset's L1 and L2 entries are, and how large clusters,
 * subclusters and tables are. Fixed when the image is opened.
 *
 * @param clusterBits log2 of the cluster size (9..21)
 * @param l2Bits log2 of the entries of an L2 table
 * @param extendedL2 whether L2 entries are extended (two words: the entry and a subcluster bitmap)
 */
record Qcow2Geometry(int clusterBits, int l2Bits, boolean extendedL2) {

    static Qcow2Geometry of(Qcow2Header header) {
        return new Qcow2Geometry(header.clusterBits(), header.l2Bits(), header.extendedL2());
    }

    int clusterSize() {
        return 1 << clusterBits;
    }

    /** log2 of the unit mappings are classified in: the subcluster with extended L2 entries (32 per cluster). */
    int unitBits() {
        return extendedL2 ? clusterBits - 5 : clusterBits;
    }

    /** The guest bytes one L2 table maps. */
    long l2Span() {
        return 1L << (clusterBits + l2Bits);
    }

    /** The L1 index of guest cluster {@code cluster}. */
    int l1Index(long cluster) {
        return (int) (cluster >>> l2Bits);
    }

    /** The index of guest cluster {@code cluster} in its L2 table (its entry; not the word with extended L2). */
    int l2Index(long cluster) {
        return (int) (cluster & ((1L << l2Bits) - 1));
    }

    /** Words per L2 entry: 2 with extended L2 entries (the entry, then the subcluster bitmap), else 1. */
    int entryWords() {
        return extendedL2 ? 2 : 1;
    }

    /** Clusters written at most by one allocating request: 8 MiB, one L2 table at most. */
    int maxWriteRun() {
        return Math.max(1, (8 << 20) >>> clusterBits);
    }

    /** How many clusters {@code bytes} bytes take, rounded up. */
    int clustersFor(long bytes) {
        return (int) Qcow2Checks.divCeil(bytes, clusterSize());
    }

    /** The host clusters of a table of {@code bytes} bytes at {@code offset} (none for an empty table). */
    long[] tableClusters(long offset, long bytes) {
        if (bytes == 0) {
            return new long[0];
        }
        long first = offset >>> clusterBits;
        long last = (offset + bytes - 1) >>> clusterBits;
        return java.util.stream.LongStream.rangeClosed(first, last).toArray();
    }
}
