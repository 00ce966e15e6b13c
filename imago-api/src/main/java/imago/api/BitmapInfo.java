package imago.api;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A persistent dirty bitmap of an image (qcow2's), as {@link Bitmaps#list()} lists it.
 *
 * @param name the bitmap's name, unique within the image
 * @param granularity the guest bytes one bit covers (a power of two, at least 512)
 * @param enabled whether the bitmap records writes (qcow2's {@code auto} flag)
 * @param inUse whether the bitmap was marked in use when the image was opened: a writer did not close the image,
 *        so the bitmap is inconsistent; it can only be removed (qcow2's {@code in-use} flag)
 */
public record BitmapInfo(String name, long granularity, boolean enabled, boolean inUse) {
    /** Validates the fields. */
    public BitmapInfo {
        Objects.requireNonNull(name, "name");
        if (granularity < 512 || Long.bitCount(granularity) != 1) {
            throw new IllegalArgumentException("bad bitmap granularity " + granularity);
        }
    }

    /** The flags as {@code qemu-img info} names them: {@code in-use}, then {@code auto}. */
    public List<String> flags() {
        List<String> out = new ArrayList<>(2);
        if (inUse) {
            out.add("in-use");
        }
        if (enabled) {
            out.add("auto");
        }
        return List.copyOf(out);
    }
}
