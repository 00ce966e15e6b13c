package imago.api;

import java.io.IOException;
import java.util.List;

/**
 * The persistent dirty bitmaps of an image's top layer, as a backup application uses them: list them, add one
 * before a full backup, read the dirty extents for an incremental one, clear, merge, enable, disable and remove
 * them. A view handed out by {@link Image#bitmaps()}; the qcow2 format has them, the others have none. Changes
 * take effect at once for this image and reach the file when the image is closed (as with QEMU, which stores its
 * bitmaps on close); a crash before then leaves the bitmaps as they were.
 *
 * <p>Failures carry QEMU's words: a missing bitmap is an {@link IllegalArgumentException} saying
 * {@code Dirty bitmap 'NAME' not found}; an inconsistent one (see {@link BitmapInfo#inUse()}) an
 * {@link UnsupportedFeatureException} of {@link Feature#PERSISTENT_BITMAPS}.
 */
public interface Bitmaps {
    /**
     * The bitmaps, in the order the image lists them.
     *
     * @throws IOException if they cannot be read
     */
    List<BitmapInfo> list() throws IOException;

    /** The guest bytes the bitmaps cover: the image's virtual size. */
    long size();

    /**
     * Adds an empty bitmap called {@code name}.
     *
     * @param granularity the bytes one bit covers (a power of two, at least 512), or 0 for the format's default
     *        (qcow2: the cluster size, within 4 KiB and 64 KiB, as QEMU chooses it)
     * @param enabled whether it records writes from now on
     * @throws IllegalArgumentException if the name is empty or taken, or the granularity is not valid
     * @throws UnsupportedFeatureException ({@link Feature#PERSISTENT_BITMAPS}) if the image cannot store the bitmap
     *         (a format without bitmaps, qcow2 v2, a granularity or name past the format's limits)
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the image fails
     */
    void add(String name, long granularity, boolean enabled) throws IOException;

    /**
     * Removes bitmap {@code name} (an inconsistent one too).
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the image fails
     */
    void remove(String name) throws IOException;

    /**
     * Clears every bit of bitmap {@code name}: what an application does after a backup.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws UnsupportedFeatureException if the bitmap is inconsistent
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the image fails
     */
    void clear(String name) throws IOException;

    /**
     * Makes bitmap {@code name} record writes.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws UnsupportedFeatureException if the bitmap is inconsistent
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the image fails
     */
    void enable(String name) throws IOException;

    /**
     * Stops bitmap {@code name} recording writes.
     *
     * @throws IllegalArgumentException if there is no such bitmap
     * @throws UnsupportedFeatureException if the bitmap is inconsistent
     * @throws ReadOnlyImageException if the image is read-only
     * @throws IOException if the image fails
     */
    void disable(String name) throws IOException;

    /**
     * Marks dirty in bitmap {@code target} every byte that bitmap {@code sourceName} of {@code source} (these
     * bitmaps, or those of another image of the same size) marks dirty, whatever the two granularities;
     * {@code target} is unchanged on failure.
     *
     * @throws IllegalArgumentException if either bitmap does not exist, or the images' sizes differ
     * @throws UnsupportedFeatureException if either bitmap is inconsistent
     * @throws ReadOnlyImageException if this image is read-only
     * @throws IOException if either image fails
     */
    void merge(String target, Bitmaps source, String sourceName) throws IOException;

    /**
     * The runs of guest bytes in {@code [offset, offset + length)} that bitmap {@code name} marks dirty or clean,
     * in order, each as long as the bitmap allows (adjacent runs differ): what an incremental backup copies.
     *
     * @throws IllegalArgumentException if there is no such bitmap or the range is outside the image
     * @throws UnsupportedFeatureException if the bitmap is inconsistent
     * @throws IOException if the bitmap cannot be read
     */
    List<DirtyRun> runs(String name, long offset, long length) throws IOException;
}
