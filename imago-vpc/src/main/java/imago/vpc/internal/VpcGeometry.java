package imago.vpc.internal;

/**
 * A disk's CHS geometry as the footer stores it, and the specification's algorithm that derives one from a
 * sector count (QEMU's {@code calculate_geometry}, including its choice of 255 heads-per-cylinder sectors above
 * 65535 * 16 * 63 sectors).
 *
 * @param cylinders 0..65535
 * @param heads 0..255
 * @param sectorsPerTrack 0..255
 */
record VpcGeometry(int cylinders, int heads, int sectorsPerTrack) {
    /** The largest geometry, 65535 x 16 x 255: images whose size it cannot express carry it. */
    static final VpcGeometry MAX = new VpcGeometry(65535, 16, 255);
    /** Its sector count. */
    static final long MAX_SECTORS_CHS = MAX.sectors();
    /** QEMU's largest image: 2040 GiB in sectors. */
    static final long MAX_SECTORS = 0xFF00_0000L;

    /** Validates the ranges. */
    VpcGeometry {
        if (cylinders < 0 || cylinders > 0xFFFF || heads < 0 || heads > 0xFF || sectorsPerTrack < 0
                || sectorsPerTrack > 0xFF) {
            throw new IllegalArgumentException("bad geometry " + cylinders + "/" + heads + "/" + sectorsPerTrack);
        }
    }

    /** Cylinders times heads times sectors per track. */
    long sectors() {
        return (long) cylinders * heads * sectorsPerTrack;
    }

    /** The specification's geometry for {@code totalSectors}, which may cover fewer sectors. */
    static VpcGeometry forSectors(long totalSectors) {
        long total = Math.min(totalSectors, MAX_SECTORS_CHS);
        int spt;
        int heads;
        long cylTimesHeads;
        if (total >= 65535L * 16 * 63) {
            spt = 255;
            heads = 16;
            cylTimesHeads = total / spt;
        } else {
            spt = 17;
            cylTimesHeads = total / spt;
            heads = (int) (((cylTimesHeads + 1023) / 1024) & 0xFF); // a u8 field, as QEMU keeps it
            if (heads < 4) {
                heads = 4;
            }
            if (cylTimesHeads >= heads * 1024L || heads > 16) {
                spt = 31;
                heads = 16;
                cylTimesHeads = total / spt;
            }
            if (cylTimesHeads >= heads * 1024L) {
                spt = 63;
                heads = 16;
                cylTimesHeads = total / spt;
            }
        }
        return new VpcGeometry((int) (cylTimesHeads / heads), heads, spt);
    }

    /**
     * The smallest geometry covering at least {@code totalSectors} (at most {@link #MAX}), as qemu-img picks it
     * for a new image: the specification's geometry of ever larger counts until one covers the request.
     */
    static VpcGeometry covering(long totalSectors) {
        long wanted = Math.min(MAX_SECTORS_CHS, totalSectors);
        VpcGeometry g = new VpcGeometry(0, 0, 0);
        for (long i = 0; wanted > g.sectors(); i++) {
            g = forSectors(wanted + i);
        }
        return g;
    }

    @Override
    public String toString() {
        return cylinders + "/" + heads + "/" + sectorsPerTrack;
    }
}
