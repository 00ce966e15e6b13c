package imago.nbd.internal.client;

import imago.api.spi.StorageExtent;
import imago.nbd.internal.Nbd;
import java.util.List;

/**
 * The descriptors of the last block status reply, so that walking an export's extents costs one request per
 * reply rather than one per extent. Any change to the export clears it.
 */
final class ExtentCache {
    /** Extents as offsets and states: run {@code i} covers {@code [starts[i], starts[i + 1])}. */
    private record Runs(long[] starts, boolean[] data) {
    }

    private volatile Runs runs;

    void clear() {
        runs = null;
    }

    /** Remembers the descriptors of a reply for the range from {@code offset}, cut at {@code end}. */
    void fill(long offset, long end, List<long[]> descriptors) {
        long[] starts = new long[descriptors.size() + 1];
        boolean[] data = new boolean[descriptors.size()];
        int n = 0;
        long pos = offset;
        for (long[] d : descriptors) {
            if (pos >= end) {
                break;
            }
            int state = (int) d[1];
            boolean hole = (state & Nbd.STATE_HOLE) != 0 && (state & Nbd.STATE_ZERO) != 0;
            starts[n] = pos;
            data[n] = !hole;
            n++;
            pos = Math.min(end, pos + d[0]);
        }
        starts[n] = pos;
        runs = new Runs(java.util.Arrays.copyOf(starts, n + 1), java.util.Arrays.copyOf(data, n));
    }

    /** The extent from {@code offset} (at most {@code maxLength} bytes, merged with equal neighbours), or null. */
    StorageExtent find(long offset, long maxLength) {
        Runs r = runs;
        if (r == null || offset < r.starts[0] || offset >= r.starts[r.starts.length - 1]) {
            return null;
        }
        int i = java.util.Arrays.binarySearch(r.starts, offset);
        if (i < 0) {
            i = -i - 2;
        }
        boolean data = r.data[i];
        int j = i;
        while (j + 1 < r.data.length && r.data[j + 1] == data) {
            j++;
        }
        long length = Math.min(maxLength, r.starts[j + 1] - offset);
        return new StorageExtent(offset, length, data);
    }
}
