package imago.testkit;

import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;
import static org.quicktheories.generators.SourceDSL.longs;

import imago.api.Preallocation;
import imago.testkit.PropertyRuns;
import java.util.ArrayList;
import java.util.List;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;

/**
 * QuickTheories generators of {@link ImageOp} sequences, format-independent. Values cluster where bugs
 * live: sector multiples, multiples of the format's or storage's {@code granularity} (cluster, chunk)
 * and a few bytes either side of them, short and long lengths. Every generator shrinks towards small
 * offsets, short lengths and short lists.
 *
 * @param maxSize the largest image size a sequence resizes to (and the range offsets are drawn from)
 * @param granularity the allocation unit whose boundaries matter (e.g. 64 KiB chunks or clusters)
 */
public record ImageOpGen(long maxSize, int granularity) {

    /**
     * A starting image and the steps to run on it.
     *
     * @param initialSize the size to create the image with
     * @param preallocation the preallocation to create it with
     * @param ops the steps
     */
    public record Scenario(long initialSize, Preallocation preallocation, List<ImageOp> ops) {

        /** This scenario with blocks of steps removed: the candidates for {@link PropertyRuns#minimise}. */
        public List<Scenario> withFewerSteps() {
            return PropertyRuns.withoutBlocks(ops).stream()
                    .map(rest -> new Scenario(initialSize, preallocation, rest)).toList();
        }
    }

    /** Validates the bounds. */
    public ImageOpGen {
        if (maxSize < granularity || granularity < 512) {
            throw new IllegalArgumentException("maxSize " + maxSize + ", granularity " + granularity);
        }
    }

    /** Image sizes: any, sector multiples, unit multiples. */
    public Gen<Long> sizes() {
        return Generate.frequency(List.of(Pair.of(2, longs().between(0, maxSize)),
                Pair.of(1, longs().between(0, maxSize / 512).map(s -> s * 512)),
                Pair.of(1, longs().between(0, maxSize / granularity).map(u -> u * granularity))));
    }

    /** Offsets: any, sector-aligned, or a few bytes around a unit boundary. */
    public Gen<Long> offsets() {
        Gen<Long> nearBoundary = longs().between(0, maxSize / granularity)
                .zip(integers().between(-8, 8), (u, d) -> Math.max(0, u * granularity + d));
        return Generate.frequency(List.of(Pair.of(3, longs().between(0, maxSize)),
                Pair.of(2, longs().between(0, maxSize / 512).map(s -> s * 512)), Pair.of(2, nearBoundary)));
    }

    /** Lengths: mostly short, some spanning several units, some exact unit multiples. */
    public Gen<Long> lengths() {
        return Generate.frequency(List.of(Pair.of(3, longs().between(0, 600)), Pair.of(2, longs().between(0, 8192)),
                Pair.of(2, longs().between(0, 3L * granularity)),
                Pair.of(1, longs().between(0, 4).map(u -> u * granularity)),
                Pair.of(1, longs().between(0, maxSize))));
    }

    /** The modes raw supports: not metadata, which raw (like qemu's) refuses. */
    public static Gen<Preallocation> preallocations() {
        return Generate.pick(List.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL));
    }

    /** One step, weighted towards reads and writes; resizes with raw's preallocation modes, no reopening. */
    public Gen<ImageOp> ops() {
        return ops(sizes().zip(preallocations(), ImageOp.Resize::new), false);
    }

    /**
     * One step, weighted towards reads and writes.
     *
     * @param resizes the resize steps, or null for none
     * @param reopen whether to close and reopen the image now and then
     */
    public Gen<ImageOp> ops(Gen<ImageOp> resizes, boolean reopen) {
        Gen<ImageOp> read = offsets().zip(lengths(), ImageOp.Read::new);
        Gen<ImageOp> write = offsets().zip(lengths(), longs().all(), ImageOp.Write::new);
        Gen<ImageOp> zeroes = offsets().zip(lengths(), Generate.booleans(), ImageOp.WriteZeroes::new);
        Gen<ImageOp> discard = offsets().zip(lengths(), ImageOp.Discard::new);
        Gen<ImageOp> flush = Generate.constant(new ImageOp.Flush());
        Gen<ImageOp> map = offsets().zip(lengths().map(l -> Math.max(1, l)), ImageOp.Map::new);
        Gen<ImageOp> pastEnd = Generate.enumValues(ImageOp.PastEnd.Kind.class)
                .zip(longs().between(0, 4096), longs().between(1, 4096), ImageOp.PastEnd::new);
        List<Pair<Integer, Gen<ImageOp>>> weighted = new ArrayList<>(List.of(Pair.of(4, read), Pair.of(5, write),
                Pair.of(3, zeroes), Pair.of(2, discard)));
        if (resizes != null) {
            weighted.add(Pair.of(1, resizes));
        }
        weighted.addAll(List.of(Pair.of(1, flush), Pair.of(2, map), Pair.of(1, pastEnd)));
        if (reopen) {
            weighted.add(Pair.of(1, Generate.constant(new ImageOp.Reopen())));
        }
        return Generate.frequency(weighted);
    }

    /** Sequences of 1 to {@code maxOps} steps. */
    public Gen<List<ImageOp>> sequences(int maxOps) {
        return lists().of(ops()).ofSizeBetween(1, maxOps);
    }

    /** A starting size and preallocation with a sequence of up to {@code maxOps} steps of {@link #ops()}. */
    public Gen<Scenario> scenarios(int maxOps) {
        return sizes().zip(preallocations(), sequences(maxOps), Scenario::new);
    }

    /** A starting size, one of {@code modes} and a sequence of up to {@code maxOps} of {@code steps}. */
    public Gen<Scenario> scenarios(int maxOps, Gen<Preallocation> modes, Gen<ImageOp> steps) {
        return sizes().zip(modes, lists().of(steps).ofSizeBetween(1, maxOps), Scenario::new);
    }
}
