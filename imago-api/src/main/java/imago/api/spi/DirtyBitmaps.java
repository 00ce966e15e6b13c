package imago.api.spi;

import imago.api.BitmapInfo;
import imago.api.DirtyRun;
import java.io.IOException;
import java.util.List;

/**
 * The persistent dirty bitmaps of a layer (qcow2's), read as they are now: what is stored, plus what writes
 * since the open have set. {@link imago.api.Image#dirtyBitmaps()} and {@link imago.api.Image#dirtyRun} hand
 * them to users.
 */
public interface DirtyBitmaps extends Capability {
    /** The bitmaps' names, in the order the layer lists them. */
    List<String> names();

    /**
     * The bitmaps with their granularity and flags, in the order of {@link #names()}.
     *
     * @implSpec The default knows only the names: each is listed enabled, consistent, at 64 KiB a bit.
     */
    default List<BitmapInfo> list() {
        return names().stream().map(n -> new BitmapInfo(n, 65536, true, false)).toList();
    }

    /**
     * The run of bytes from {@code offset} that bitmap {@code name} marks alike, at most {@code maxLength} bytes
     * long and within the layer's size.
     *
     * @throws IllegalArgumentException if there is no bitmap {@code name}
     * @throws imago.api.UnsupportedFeatureException ({@link imago.api.Feature#PERSISTENT_BITMAPS}) if the bitmap
     *         is inconsistent (marked in use by a writer that did not close the image)
     * @throws IOException if the bitmap cannot be read
     */
    DirtyRun run(String name, long offset, long maxLength) throws IOException;
}
