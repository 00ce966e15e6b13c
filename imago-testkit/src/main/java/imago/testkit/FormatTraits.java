package imago.testkit;

import imago.api.CheckReport;
import imago.api.Preallocation;
import java.util.List;
import java.util.function.Predicate;

/**
 * What a format does that the {@link FormatConformanceTest conformance kit} cannot ask the image, each checked by
 * the kit as well as used: how sizes off the size unit are treated (refused, or rounded up), whether
 * preallocated shrinks are refused, and whether an image of 0 bytes is refused. What the API tells — which optional capabilities an image has
 * ({@link imago.api.Image#supports}: check, resize, internal snapshots, compressed writes, backing file), whether
 * qemu-img knows the format — the kit asks. Start from {@link #of} and add what applies:
 *
 * <pre>{@code
 * FormatTraits.of(Preallocation.OFF, Preallocation.METADATA).sizesIn(512).refusingPreallocatedShrinks()
 * }</pre>
 *
 * @param preallocations the preallocation modes create and resize accept (the first is the default)
 * @param sizeUnit the unit of the virtual size (1 for any size)
 * @param roundsUp whether a size off the unit is rounded up to it (raw, after QEMU); if not, it is refused with an
 *        {@link IllegalArgumentException}
 * @param shrinkRefusesPreallocation whether a shrink with a preallocation mode other than {@code OFF} is refused
 *        with an {@link IllegalArgumentException} (as qcow2's is, QEMU's rule) rather than done
 * @param emptyRefused whether creating an image of 0 bytes is refused with an {@link IllegalArgumentException}
 *        (vmdk: no one can open one), so that the kit's images start at a sector
 * @param growsOnly whether a resize can only grow the image: a shrink is refused with an
 *        {@link imago.api.UnsupportedFeatureException} of {@link imago.api.Feature#RESIZE} (qed, as in QEMU)
 * @param recoversWhenWritable whether an image a crash left behind must first be opened writable, which repairs it,
 *        before it can be opened read-only (vhdx: a writable open replays the log, a read-only one refuses, as in
 *        QEMU); the crash runs then open each crashed file writable first, and run {@code qemu-img check -r all}
 * @param crashError the one check message a power loss may leave where no write order can avoid it (VDI: the
 *        header's count of allocated blocks lies in another sector than the entries it counts), or {@code null}
 * @param unwrittenUndefined whether bytes the guest never wrote (of a new image, or added by a resize) may read as
 *        anything, as long as they read the same every time: see {@link #readingUnwrittenBytesAsUndefined()}
 */
public record FormatTraits(List<Preallocation> preallocations, int sizeUnit, boolean roundsUp,
        boolean shrinkRefusesPreallocation, boolean emptyRefused, boolean growsOnly, boolean recoversWhenWritable,
        Predicate<String> crashError, boolean unwrittenUndefined) {

    /** Validates and freezes the fields. */
    public FormatTraits {
        preallocations = List.copyOf(preallocations);
        if (preallocations.isEmpty()) {
            throw new IllegalArgumentException("no preallocation mode");
        }
        if (sizeUnit < 1) {
            throw new IllegalArgumentException("size unit " + sizeUnit);
        }
    }

    /** A format that creates images with these preallocation modes (the first the default), and nothing more. */
    public static FormatTraits of(Preallocation... preallocations) {
        return new FormatTraits(List.of(preallocations), 1, false, false, false, false, false, null, false);
    }

    /** These traits, and sizes must be multiples of {@code unit}: others are refused. */
    public FormatTraits sizesIn(int unit) {
        return new FormatTraits(preallocations, unit, false, shrinkRefusesPreallocation, emptyRefused, growsOnly,
                recoversWhenWritable, crashError, unwrittenUndefined);
    }

    /** These traits, and sizes are rounded up to multiples of {@code unit}. */
    public FormatTraits roundingSizesUpTo(int unit) {
        return new FormatTraits(preallocations, unit, true, shrinkRefusesPreallocation, emptyRefused, growsOnly,
                recoversWhenWritable, crashError, unwrittenUndefined);
    }

    /** These traits, and a shrink with preallocation is refused. */
    public FormatTraits refusingPreallocatedShrinks() {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, true, emptyRefused, growsOnly,
                recoversWhenWritable, crashError, unwrittenUndefined);
    }

    /** These traits, and an image of 0 bytes is refused at creation. */
    public FormatTraits refusingEmptyImages() {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, shrinkRefusesPreallocation, true, growsOnly,
                recoversWhenWritable, crashError, unwrittenUndefined);
    }

    /** These traits, and a resize only grows the image: shrinks are refused as unsupported. */
    public FormatTraits growingOnly() {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, shrinkRefusesPreallocation, emptyRefused, true,
                recoversWhenWritable, crashError, unwrittenUndefined);
    }

    /** These traits, and an image a crash left behind is repaired by a writable open before anything else. */
    public FormatTraits recoveringWhenOpenedWritable() {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, shrinkRefusesPreallocation, emptyRefused,
                growsOnly, true, crashError, unwrittenUndefined);
    }

    /**
     * These traits, and a power loss may leave one inconsistency the format's layout cannot avoid: the crash test
     * then accepts a check (imago's or qemu-img's) that reports exactly one corruption, on an error line which
     * {@code message} accepts (and leaks, which the kit accepts anyway). Flushed data must still read back intact.
     */
    public FormatTraits allowingCrashError(Predicate<String> message) {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, shrinkRefusesPreallocation, emptyRefused,
                growsOnly, recoversWhenWritable, message, unwrittenUndefined);
    }

    /**
     * These traits, and bytes the guest never wrote read as whatever the format makes of them, not as zeroes: a new
     * LUKS container's sectors, and those a resize adds, decrypt the file's zeroes to noise (QEMU's luks driver has
     * no zero init either: {@link imago.api.spi.FormatDriver#createsZeroedImages()} is false), and so do the
     * preallocated clusters of an encrypted qcow2 image, as in QEMU. The kit's model then takes the first thing such
     * a byte reads as its value and holds the image to it from then on (every later read, map, reopen, and
     * qemu-img's compare): unwritten bytes must be stable, those an image maps as zero must read zero, and every byte
     * written reads back exactly. The kit does not write the whole image first instead: that would hide what
     * unwritten bytes read, which imago must read as qemu-img does.
     */
    public FormatTraits readingUnwrittenBytesAsUndefined() {
        return new FormatTraits(preallocations, sizeUnit, roundsUp, shrinkRefusesPreallocation, emptyRefused,
                growsOnly, recoversWhenWritable, crashError, true);
    }

    /**
     * Whether {@code r}, a check of a crashed image, finds one corruption, the one {@link #allowingCrashError} allows
     * (leaks may come with it).
     */
    boolean allowedAfterCrash(CheckReport r) {
        return crashError != null && r.corruptions() == 1 && r.messages().stream().filter(crashError).count() == 1;
    }

    /**
     * Whether qemu-img check's output ({@code out}, {@code err}) of a crashed image reports one error, on an error
     * line that {@link #allowingCrashError} allows.
     */
    boolean allowedAfterCrash(String out, String err) {
        return crashError != null && out.contains("\n1 errors were found on the image.")
                && err.lines().filter(crashError).count() == 1;
    }

    /** A size near {@code size} that the format accepts: {@code size} itself, or rounded down to the unit. */
    long acceptable(long size) {
        return roundsUp ? size : size / sizeUnit * sizeUnit;
    }

    /** The virtual size of an image resized to an acceptable {@code size}. */
    long virtualSize(long size) {
        return roundsUp ? (size + sizeUnit - 1) / sizeUnit * sizeUnit : size;
    }
}
