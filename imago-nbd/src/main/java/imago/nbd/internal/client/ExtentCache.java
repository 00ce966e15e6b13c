package imago.nbd.internal.client;

import imago.api.spi.StorageExtent;
import imago.nbd.internal.Nbd;
import java.util.Arrays;
import java.util.List;

/**
 * The descriptors of the last block status reply, so that walking an export's extents costs one request per reply
 * rather than one per extent. Every change to the export moves the cache to a new generation (before and after the
 * change), and a reply is kept only if no change began or ended while it was asked for.
 */
final class ExtentCache {
    /** Extents as offsets and states: run {@code i} covers {@code [starts[i], starts[i + 1])}. */
    record Runs(long[] starts, boolean[] data) {
        /** The runs of a reply's descriptors for the range from {@code offset}, cut at {@code end}. */
        static Runs of(long offset, long end, List<long[]> descriptors) {
            long[] starts = new long[descriptors.size() + 1];
            boolean[] data = new boolean[descriptors.size()];
            int n = 0;
            long pos = offset;
            for (long[] d : descriptors) {
                if (pos >= end) {
                    break;
                }
                int state = (int) d[1];
                // a hole that reads as zero; a hole of other bytes (HOLE alone) still holds data for a reader
                boolean hole = (state & Nbd.STATE_HOLE) != 0 && (state & Nbd.STATE_ZERO) != 0;
                starts[n] = pos;
                data[n] = !hole;
                n++;
                pos = Math.min(end, pos + d[0]);
            }
            starts[n] = pos;
            return new Runs(Arrays.copyOf(starts, n + 1), Arrays.copyOf(data, n));
        }

        /** The extent from {@code offset} (at most {@code maxLength} bytes, merged with equal neighbours), or null. */
        StorageExtent find(long offset, long maxLength) {
            if (offset < starts[0] || offset >= starts[starts.length - 1]) {
                return null;
            }
            int i = Arrays.binarySearch(starts, offset);
            if (i < 0) {
                i = -i - 2;
            }
            boolean state = data[i];
            int j = i;
            while (j + 1 < data.length && data[j + 1] == state) {
                j++;
            }
            return new StorageExtent(offset, Math.min(maxLength, starts[j + 1] - offset), state);
        }
    }

    private volatile Runs runs;
    private long generation;

    /** A change to the export begins or ends: what is cached is stale. */
    synchronized void clear() {
        generation++;
        runs = null;
    }

    /** The generation to hand to {@link #keep} with the reply of a request sent after this call. */
    synchronized long generation() {
        return generation;
    }

    /** Keeps {@code reply} unless the export changed since {@code seen}. */
    synchronized void keep(Runs reply, long seen) {
        if (seen == generation) {
            runs = reply;
        }
    }

    /** The cached extent from {@code offset}, or null. */
    StorageExtent find(long offset, long maxLength) {
        Runs r = runs;
        return r == null ? null : r.find(offset, maxLength);
    }
}
