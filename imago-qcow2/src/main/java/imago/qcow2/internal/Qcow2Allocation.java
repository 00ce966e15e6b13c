package imago.qcow2.internal;

/**
 * What an allocating write changes once its data is written ({@link Qcow2Tables#link}), or gives back if it is
 * not ({@link Qcow2Tables#giveBack}).
 *
 * @param l2Offset the L2 table
 * @param index the entry in it
 * @param entry the new L2 entry (of the first cluster: each next one is a cluster further)
 * @param allocated the newly allocated host cluster (the first of count), or -1 if the clusters were already
 *        ours or are an external data file's
 * @param replaced the L2 entry the new one replaces (its clusters lose a reference on commit), or 0
 * @param count how many consecutive clusters (entries, host clusters) the write allocated; more than one
 *        only for clusters that held nothing (replaced is then 0 for all)
 * @param bitmaps with extended L2 entries, the new subcluster bitmap of each of the count entries; else null
 */
record Qcow2Allocation(long l2Offset, int index, long entry, long allocated, long replaced, int count,
        long[] bitmaps) {

    /** One cluster with a standard L2 entry. */
    Qcow2Allocation(long l2Offset, int index, long entry, long allocated, long replaced) {
        this(l2Offset, index, entry, allocated, replaced, 1, null);
    }
}
