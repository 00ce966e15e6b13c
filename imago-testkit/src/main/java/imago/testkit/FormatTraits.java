package imago.testkit;

import imago.api.Preallocation;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What a format does that the {@link FormatConformanceTest conformance kit} cannot ask the image, each checked by
 * the kit as well as used: sizes off the size unit must be refused, and so must preallocated shrinks where said.
 * What the API tells — which optional capabilities an image has ({@link imago.api.Image#supports}: check, resize,
 * internal snapshots, compressed writes, backing file), whether qemu-img knows the format — the kit asks. Start
 * from {@link #of} and add what applies:
 *
 * <pre>{@code
 * FormatTraits.of(Preallocation.OFF, Preallocation.METADATA).sizesIn(512).refusingPreallocatedShrinks()
 * }</pre>
 *
 * @param preallocations the preallocation modes create and resize accept (the first is the default)
 * @param sizeUnit the unit a new size must be a multiple of (1 for any size); other sizes are refused with an
 *        {@link IllegalArgumentException}
 * @param shrinkRefusesPreallocation whether a shrink with a preallocation mode other than {@code OFF} is refused
 *        with an {@link IllegalArgumentException} (as qcow2's is, QEMU's rule) rather than done
 * @param qemuMapDivergence a known, reported difference between imago's extents and {@code qemu-img map} for this
 *        format: when the maps differ, the kit's differential test is aborted (reported as skipped) with this
 *        reason and the difference, instead of failing; when they agree it passes. Empty for none.
 */
public record FormatTraits(List<Preallocation> preallocations, int sizeUnit,
        boolean shrinkRefusesPreallocation, Optional<String> qemuMapDivergence) {

    /** Validates and freezes the fields. */
    public FormatTraits {
        preallocations = List.copyOf(preallocations);
        if (preallocations.isEmpty()) {
            throw new IllegalArgumentException("no preallocation mode");
        }
        if (sizeUnit < 1) {
            throw new IllegalArgumentException("size unit " + sizeUnit);
        }
        Objects.requireNonNull(qemuMapDivergence, "qemuMapDivergence");
    }

    /** A format that creates images with these preallocation modes (the first the default), and nothing more. */
    public static FormatTraits of(Preallocation... preallocations) {
        return new FormatTraits(List.of(preallocations), 1, false, Optional.empty());
    }

    /** These traits, and sizes must be multiples of {@code unit}. */
    public FormatTraits sizesIn(int unit) {
        return new FormatTraits(preallocations, unit, shrinkRefusesPreallocation, qemuMapDivergence);
    }

    /** These traits, and a shrink with preallocation is refused. */
    public FormatTraits refusingPreallocatedShrinks() {
        return new FormatTraits(preallocations, sizeUnit, true, qemuMapDivergence);
    }

    /** These traits, with a known difference from {@code qemu-img map} (a finding awaiting its fix). */
    public FormatTraits divergingFromQemuMap(String finding) {
        return new FormatTraits(preallocations, sizeUnit, shrinkRefusesPreallocation, Optional.of(finding));
    }
}
