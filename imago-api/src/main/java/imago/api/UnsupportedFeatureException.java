package imago.api;

import java.util.Objects;

/**
 * The image uses, or the request needs, a feature that imago (or the installed modules) cannot handle: a typed
 * {@link #feature() key} that callers can test and a {@link #featureName() name} that says exactly what.
 */
public class UnsupportedFeatureException extends ImageException {
    private static final long serialVersionUID = 1L;

    private final Feature feature;
    private final String featureName;

    /**
     * @param resource the image
     * @param feature what kind of feature is missing
     * @param featureName exactly which one, e.g. {@code "unknown incompatible feature bit 5"}
     * @param detail the full message
     */
    public UnsupportedFeatureException(String resource, Feature feature, String featureName, String detail) {
        super(resource, -1, detail, null);
        this.feature = Objects.requireNonNull(feature, "feature");
        this.featureName = Objects.requireNonNull(featureName, "featureName");
    }

    /**
     * An exception whose {@link #featureName()} is the constant's name in words.
     *
     * @param resource the image
     * @param feature what is missing
     * @param detail the full message
     */
    public UnsupportedFeatureException(String resource, Feature feature, String detail) {
        this(resource, feature, feature.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '), detail);
    }

    /** What kind of feature is missing. */
    public Feature feature() {
        return feature;
    }

    /** Exactly which feature, in words. */
    public String featureName() {
        return featureName;
    }
}
