package imago.api.spi;

import imago.api.Secrets;
import java.util.Map;
import java.util.Objects;

/**
 * What a driver is told when opening a layer.
 *
 * @param writable whether the layer will be written
 * @param probed whether the format was chosen by probing rather than named by the user
 * @param options driver-specific tuning (e.g. {@code l2-cache-size}), by qemu's option names
 * @param secrets the secrets options name by id (qemu's {@code key-secret=ID}), for encrypted images
 */
public record OpenContext(boolean writable, boolean probed, Map<String, String> options, Secrets secrets) {

    /** Validates the fields and freezes {@code options}. */
    public OpenContext {
        options = Map.copyOf(Objects.requireNonNull(options, "options"));
        Objects.requireNonNull(secrets, "secrets");
    }

    /** A context without secrets. */
    public OpenContext(boolean writable, boolean probed, Map<String, String> options) {
        this(writable, probed, options, Secrets.none());
    }

    /**
     * The option that asks for an open for {@link Checker#check checking} (value {@code on}), like
     * QEMU's {@code BDRV_O_CHECK}: the driver opens what it can of a damaged image instead of refusing the
     * damage the check reports, and a writable open does not repair or refuse on its own (dirty or corrupt
     * images), since the check is there to do that.
     */
    public static final String CHECK_OPTION = "imago.check";

    /** Whether the layer is opened for {@link Checker#check checking} ({@link #CHECK_OPTION}). */
    public boolean forCheck() {
        return "on".equals(options.get(CHECK_OPTION));
    }

    /**
     * The option that says the layer is opened for its metadata only (value {@code on}), like QEMU's
     * {@code BDRV_O_NO_IO} for {@code qemu-img info}: no guest data will be read or written, so the driver may open
     * an image whose data it could not reach (a qcow2 image whose external data file has no name).
     */
    public static final String NO_IO_OPTION = "imago.no-io";

    /** Whether the layer is opened for its metadata only ({@link #NO_IO_OPTION}). */
    public boolean metadataOnly() {
        return "on".equals(options.get(NO_IO_OPTION));
    }

    /** A context with no options. */
    public static OpenContext of(boolean writable) {
        return new OpenContext(writable, false, Map.of());
    }
}
