package imago.api;

/** What {@link Image#check} may change, as {@code qemu-img check -r}. */
public enum Repair {
    /** Only report (no {@code -r}). */
    NONE,
    /** Free leaked clusters ({@code -r leaks}): refcounts higher than the references. */
    LEAKS,
    /**
     * Also fix corruptions ({@code -r all}): refcounts lower than the references (rebuilding the refcount
     * structures when a referenced cluster has none) and wrong flags; may drop data that cannot be kept.
     */
    ALL
}
