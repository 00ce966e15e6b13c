package imago.cli.convert;

import imago.api.Image;
import imago.api.Mapping;
import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;

/**
 * The runs of a source image that its top layer does not hold (they fall through to its backing file), for
 * {@code qemu-img convert -B}: such a run is left to the target's backing file, unless it starts past the end of the
 * source's backing file, where it reads as zeroes and is written as such. qemu-img decides once per run, at its
 * start, so a run that begins inside the backing file and reaches past its end is left alone as a whole.
 */
public final class BackingRuns {
    /** Run start to run end (exclusive). */
    private final TreeMap<Long, Long> runs;
    private final long backingSize;

    private BackingRuns(TreeMap<Long, Long> runs, long backingSize) {
        this.runs = runs;
        this.backingSize = backingSize;
    }

    /**
     * The runs of {@code source}'s top layer that fall through to its backing file.
     *
     * @throws IOException if the mapping cannot be read
     */
    public static BackingRuns of(Image source) throws IOException {
        TreeMap<Long, Long> runs = new TreeMap<>();
        long size = source.size();
        long runStart = -1;
        for (long pos = 0; pos < size; ) {
            Mapping m = source.mapping(pos, size - pos);
            if (m.length() <= 0) {
                break;
            }
            boolean through = m instanceof Mapping.Unallocated;
            if (through && runStart < 0) {
                runStart = pos;
            } else if (!through && runStart >= 0) {
                runs.put(runStart, pos);
                runStart = -1;
            }
            pos += m.length();
        }
        if (runStart >= 0) {
            runs.put(runStart, size);
        }
        return new BackingRuns(runs, source.backing().map(Image::size).orElse(0L));
    }

    /** The run that holds {@code offset}, as start and end, or {@code null}. */
    Map.Entry<Long, Long> at(long offset) {
        Map.Entry<Long, Long> e = runs.floorEntry(offset);
        return e != null && offset < e.getValue() ? e : null;
    }

    /** Where the next run after {@code offset} starts, or {@link Long#MAX_VALUE}. */
    long nextStart(long offset) {
        Long next = runs.higherKey(offset);
        return next == null ? Long.MAX_VALUE : next;
    }

    /** Whether the run starting at {@code runStart} reads as zeroes (it starts past the source's backing file). */
    boolean readsAsZero(long runStart) {
        return runStart >= backingSize;
    }
}
