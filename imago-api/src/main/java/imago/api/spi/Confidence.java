package imago.api.spi;

/** How sure a driver is that a probed image is in its format. Ordered from weakest to strongest. */
public enum Confidence {
    /** Not this format. */
    NONE,
    /** Could be this format; only a fallback such as raw answers this. */
    WEAK,
    /**
     * Nothing in the bytes says so, but the file's name does ({@link FormatDriver#probedSuffixes()}: QEMU probes dmg
     * by its ".dmg"): above a fallback, below any magic number.
     */
    NAMED,
    /** A magic number and a consistent header: this format. */
    STRONG
}
