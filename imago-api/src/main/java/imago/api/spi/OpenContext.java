package imago.api.spi;

import java.util.Map;
import java.util.Objects;

/**
 * What a driver is told when opening a layer.
 *
 * @param writable whether the layer will be written
 * @param probed whether the format was chosen by probing rather than named by the user
 * @param options driver-specific tuning (e.g. {@code l2-cache-size}), by qemu's option names
 */
public record OpenContext(boolean writable, boolean probed, Map<String, String> options) {

    /** Validates the fields and freezes {@code options}. */
    public OpenContext {
        options = Map.copyOf(Objects.requireNonNull(options, "options"));
    }

    /** A context with no options. */
    public static OpenContext of(boolean writable) {
        return new OpenContext(writable, false, Map.of());
    }
}
