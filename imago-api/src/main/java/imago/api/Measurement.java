package imago.api;

import java.util.OptionalLong;

/**
 * How large a new image file would be ({@code qemu-img measure}): for given create options, empty or holding a
 * source image's data.
 *
 * @param required bytes the file needs for the data it holds and its metadata
 * @param fullyAllocated bytes the file needs when every guest cluster is allocated
 * @param bitmaps bytes the source's persistent dirty bitmaps would take, when both formats keep such bitmaps
 */
public record Measurement(long required, long fullyAllocated, OptionalLong bitmaps) {
    /** Validates the sizes. */
    public Measurement {
        if (required < 0 || fullyAllocated < 0 || bitmaps.orElse(0) < 0) {
            throw new IllegalArgumentException("negative size in " + required + "/" + fullyAllocated + "/" + bitmaps);
        }
    }
}
