package imago.api;

import java.util.Objects;

/** The image uses a feature that imago (or the installed modules) cannot handle; names the feature. */
public class UnsupportedFeatureException extends ImageException {
    private static final long serialVersionUID = 1L;

    private final String feature;

    /**
     * @param resource the image
     * @param feature short name of the feature, e.g. {@code "zstd compression"}
     * @param detail the full message
     */
    public UnsupportedFeatureException(String resource, String feature, String detail) {
        super(resource, -1, detail, null);
        this.feature = Objects.requireNonNull(feature, "feature");
    }

    /** The feature's short name. */
    public String feature() {
        return feature;
    }
}
