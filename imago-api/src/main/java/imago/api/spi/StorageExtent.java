package imago.api.spi;

/**
 * A run of storage bytes that either hold data or are a hole.
 *
 * @param offset first byte
 * @param length number of bytes, at least 1
 * @param data {@code true} for data, {@code false} for a hole that reads as zeroes
 */
public record StorageExtent(long offset, long length, boolean data) {
    /** Validates the range. */
    public StorageExtent {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("bad storage extent: offset " + offset + ", length " + length);
        }
    }
}
