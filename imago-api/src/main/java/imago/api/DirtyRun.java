package imago.api;

/**
 * A run of guest bytes that a persistent dirty bitmap marks alike: all dirty (changed since the bitmap was
 * cleared, as incremental backups read it) or all clean.
 *
 * @param offset the first guest byte
 * @param length the number of bytes (positive)
 * @param dirty whether the bitmap marks them dirty
 */
public record DirtyRun(long offset, long length, boolean dirty) {
    /** Validates the fields. */
    public DirtyRun {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("bad dirty run: offset " + offset + ", length " + length);
        }
    }
}
