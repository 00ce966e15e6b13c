package imago.api.spi;

import java.io.IOException;

/**
 * Changes to a writable layer's persistent dirty bitmaps (qcow2's), which the layer stores when it is closed;
 * {@link imago.api.Image#bitmaps()} hands them to users, and merges by reading the source bitmap through
 * {@link DirtyBitmaps} and marking the bytes here. Failures carry QEMU's words, as {@link imago.api.Bitmaps} says.
 */
public interface BitmapEditor extends Capability {
    /**
     * Adds an empty bitmap.
     *
     * @param granularity a power of two of at least 512, or 0 for the layer's default
     * @throws IllegalArgumentException if the name is taken
     * @throws imago.api.UnsupportedFeatureException if the layer cannot store it
     */
    void add(String name, long granularity, boolean enabled) throws IOException;

    /**
     * Removes a bitmap.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     */
    void remove(String name) throws IOException;

    /**
     * Clears a consistent bitmap.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws imago.api.UnsupportedFeatureException if it is inconsistent
     */
    void clear(String name) throws IOException;

    /**
     * Makes a consistent bitmap record writes, or stop recording them.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws imago.api.UnsupportedFeatureException if it is inconsistent
     */
    void setEnabled(String name, boolean enabled) throws IOException;

    /**
     * Marks guest bytes {@code [offset, offset + length)} dirty in a consistent bitmap.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws imago.api.UnsupportedFeatureException if it is inconsistent
     */
    void markDirty(String name, long offset, long length) throws IOException;
}
