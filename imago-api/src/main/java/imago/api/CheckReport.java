package imago.api;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What {@code qemu-img check} reports about one image. After a repair the counts are those of the check
 * that followed it, and {@code corruptionsFixed} / {@code leaksFixed} say what the repair fixed.
 *
 * @param filename the image's resource name
 * @param format the driver name
 * @param checkErrors errors that kept the check from finishing or from being sure (I/O errors, limits)
 * @param corruptions inconsistencies that may lose data: refcounts lower than the references, wrong
 *        flags, invalid or overlapping table entries
 * @param leaks clusters whose refcount is higher than the references (wasted space, no harm to data)
 * @param corruptionsFixed corruptions the repair fixed
 * @param leaksFixed leaks the repair fixed
 * @param imageEndOffset the end of the last cluster in use (referenced or refcounted), 0 if not known
 * @param totalClusters clusters of the virtual disk
 * @param allocatedClusters guest clusters allocated in this layer
 * @param fragmentedClusters allocated clusters not host-contiguous with the previous one
 * @param compressedClusters compressed clusters
 * @param messages what the check found, one line each as qemu-img prints them to stderr (at most
 *        {@link #MAX_MESSAGES}; the last says how many were left out)
 * @param failure why the check or repair could not finish, when it could not (qemu-img then prints no
 *        report, says "Check failed" and exits with 1); the counts are those reached so far
 */
public record CheckReport(String filename, String format, long checkErrors, long corruptions, long leaks,
        long corruptionsFixed, long leaksFixed, long imageEndOffset, long totalClusters, long allocatedClusters,
        long fragmentedClusters, long compressedClusters, List<String> messages, Optional<String> failure) {

    /** The most messages a report keeps, so that a badly damaged image cannot exhaust memory. */
    public static final int MAX_MESSAGES = 10_000;

    /** Validates the fields and freezes {@code messages}. */
    public CheckReport {
        Objects.requireNonNull(filename, "filename");
        Objects.requireNonNull(format, "format");
        messages = List.copyOf(messages);
        Objects.requireNonNull(failure, "failure");
        if (checkErrors < 0 || corruptions < 0 || leaks < 0 || corruptionsFixed < 0 || leaksFixed < 0
                || imageEndOffset < 0 || totalClusters < 0 || allocatedClusters < 0 || fragmentedClusters < 0
                || compressedClusters < 0) {
            throw new IllegalArgumentException("negative count in check report for " + filename);
        }
    }

    /** The same report under another file name (e.g. the name the user typed). */
    public CheckReport withFilename(String name) {
        return new CheckReport(name, format, checkErrors, corruptions, leaks, corruptionsFixed, leaksFixed,
                imageEndOffset, totalClusters, allocatedClusters, fragmentedClusters, compressedClusters, messages,
                failure);
    }

    /** Whether the check finished and found nothing wrong (no check errors, corruptions or leaks). */
    public boolean clean() {
        return failure.isEmpty() && checkErrors == 0 && corruptions == 0 && leaks == 0;
    }

    /**
     * {@code qemu-img check}'s exit status for this report: 1 if the check failed (a failure or check errors),
     * 2 for corruptions, 3 for leaks only, 0 for a clean image.
     */
    public int exitStatus() {
        return failure.isPresent() || checkErrors != 0 ? 1 : corruptions != 0 ? 2 : leaks != 0 ? 3 : 0;
    }
}
