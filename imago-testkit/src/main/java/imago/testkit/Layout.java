package imago.testkit;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One way to create images of a format for the {@link FormatConformanceTest conformance kit}: a name for
 * messages, the format's create options ({@code -o} style), the allocation unit whose boundaries the generated
 * offsets cluster around (a cluster, a sector), whether the image sits over a backing file, and whether its images
 * probe as raw.
 *
 * @param name a short name for messages, e.g. {@code "4k clusters"}
 * @param options the create options
 * @param granularity the allocation unit in bytes (at least 512)
 * @param backed whether the kit gives the image a raw backing file
 * @param probesAsRaw whether images of this layout start with guest data and carry nothing a probe could see, so
 *        that probing picks raw's weak fallback (a fixed VHD, whose only header is a footer at the end), in imago
 *        as in qemu-img
 */
public record Layout(String name, Map<String, String> options, int granularity, boolean backed,
        boolean probesAsRaw) {

    /** Validates and freezes the fields. */
    public Layout {
        Objects.requireNonNull(name, "name");
        options = Map.copyOf(options);
        if (granularity < 512) {
            throw new IllegalArgumentException("granularity " + granularity + " is below a sector");
        }
    }

    /**
     * A layout from {@code qemu-img -o} style options, e.g. {@code "cluster_size=4096,refcount_bits=2"}.
     *
     * @throws IllegalArgumentException if an option has no {@code =}
     */
    public static Layout of(String name, int granularity, String options) {
        Map<String, String> parsed = new LinkedHashMap<>();
        for (String o : options.split(",")) {
            if (o.isEmpty()) {
                continue;
            }
            int eq = o.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("not name=value: " + o);
            }
            parsed.put(o.substring(0, eq), o.substring(eq + 1));
        }
        return new Layout(name, parsed, granularity, false, false);
    }

    /** This layout over a backing file. */
    public Layout overBackingFile() {
        return new Layout(name + ", backed", options, granularity, true, probesAsRaw);
    }

    /**
     * This layout, whose images probe as raw: the kit's probe test then expects raw to be picked for them, and
     * still that no other driver claims them.
     */
    public Layout probingAsRaw() {
        return new Layout(name, options, granularity, backed, true);
    }

    /** The create options for an image of {@code size} bytes, preallocated as {@code preallocation}. */
    CreateOptions.Builder createOptions(long size, Preallocation preallocation) {
        CreateOptions.Builder b = CreateOptions.builder().size(size).preallocation(preallocation);
        options.forEach(b::option);
        return b;
    }

    @Override
    public String toString() {
        return name;
    }
}
