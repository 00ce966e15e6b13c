package imago.vmdk.internal;

/**
 * The markers of a streamOptimized extent (VMware "Virtual Disk Format 1.1"): each a sector of {@code numSectors}
 * (u64), {@code size} (u32, 0 for a metadata marker) and {@code type} (u32), little-endian; a metadata marker is
 * followed by {@code numSectors} sectors of what it announces. A compressed grain's marker is only the first 12
 * bytes ({@code lba}, {@code size} &gt; 0) followed directly by the zlib stream.
 */
final class VmdkStreamMarkers {
    static final int END_OF_STREAM = 0;
    static final int GRAIN_TABLE = 1;
    static final int GRAIN_DIRECTORY = 2;
    static final int FOOTER = 3;

    private VmdkStreamMarkers() {
    }
}
