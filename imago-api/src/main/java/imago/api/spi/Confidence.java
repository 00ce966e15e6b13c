package imago.api.spi;

/** How sure a driver is that a probed image is in its format. Ordered from weakest to strongest. */
public enum Confidence {
    /** Not this format. */
    NONE,
    /** Could be this format; only a fallback such as raw answers this. */
    WEAK,
    /** A magic number and a consistent header: this format. */
    STRONG
}
