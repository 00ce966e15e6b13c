package imago.vmdk.internal;

/**
 * What a sparse extent's lookups need, whichever header it came from ({@code KDMV} or {@code COWD}).
 *
 * @param capacity the extent's size in sectors
 * @param grainSectors sectors per grain
 * @param gtesPerGt entries per grain table
 * @param gdEntries entries in the grain directory
 * @param gdOffset the grain directory's byte offset
 * @param rgdOffset the redundant grain directory's byte offset, or -1 for none
 * @param overhead where grains may start, in sectors: everything before is metadata
 * @param compressed grains are zlib streams (streamOptimized)
 * @param markers compressed grains start with a 12-byte marker (lba, size)
 * @param zeroGrains a grain table entry of 1 means a grain of zeroes
 * @param writable whether imago writes extents of this kind
 */
record VmdkSparseLayout(long capacity, long grainSectors, int gtesPerGt, int gdEntries, long gdOffset,
        long rgdOffset, long overhead, boolean compressed, boolean markers, boolean zeroGrains, boolean writable) {

    /** The layout a {@code KDMV} header describes (its directory at {@code gdOffset}, not at the end). */
    static VmdkSparseLayout of(VmdkSparseHeader h) {
        return new VmdkSparseLayout(h.capacity(), h.grainSize(), h.gtesPerGt(), Math.toIntExact(h.gdEntries()),
                h.gdOffset() * VmdkDescriptor.SECTOR,
                h.has(VmdkSparseHeader.FLAG_RGD) ? h.rgdOffset() * VmdkDescriptor.SECTOR : -1, h.overhead(),
                h.compressed(), h.markers(), h.zeroGrains(), true);
    }

    /** Bytes per grain. */
    int grainBytes() {
        return Math.toIntExact(grainSectors * VmdkDescriptor.SECTOR);
    }

    /** The extent's size in bytes. */
    long bytes() {
        return capacity * VmdkDescriptor.SECTOR;
    }
}
