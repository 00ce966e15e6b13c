package imago.api.spi;

import imago.api.SnapshotInfo;
import java.io.IOException;
import java.util.List;

/**
 * Snapshots stored inside the layer (qcow2's). Changes are called with every other request of the image
 * excluded. A snapshot is found by id first, then by the first one with that name (QEMU's rule).
 */
public interface InternalSnapshots extends Capability {

    /** The snapshots, oldest first. */
    List<SnapshotInfo> list();

    /**
     * Snapshots the layer's current state as {@code name}, with the next free numeric id. Names need not be unique.
     *
     * @throws imago.api.ReadOnlyImageException if the layer is read-only
     * @throws imago.api.UnsupportedFeatureException if this image cannot take snapshots
     * @throws imago.api.ImageLimitException if a reference count would overflow
     * @throws IOException if the snapshot cannot be written; the layer stays consistent
     */
    SnapshotInfo create(String name) throws IOException;

    /**
     * Deletes a snapshot, freeing what only it used.
     *
     * @throws imago.api.NoSuchSnapshotException if no snapshot has that id or name
     * @throws IOException if the deletion fails; the layer stays consistent
     */
    void delete(String idOrName) throws IOException;

    /**
     * Reverts the layer to a snapshot, which stays; the layer's size becomes the snapshot's.
     *
     * @throws imago.api.NoSuchSnapshotException if no snapshot has that id or name
     * @throws IOException if reverting fails; the layer stays consistent
     */
    void apply(String idOrName) throws IOException;
}
