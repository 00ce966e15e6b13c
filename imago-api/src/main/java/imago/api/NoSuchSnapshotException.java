package imago.api;

import java.util.Objects;

/** An image has no internal snapshot with the id or name a caller asked for. */
public class NoSuchSnapshotException extends ImageException {
    private static final long serialVersionUID = 1L;

    private final String snapshot;

    /**
     * @param resource the image
     * @param snapshot the id or name that matched no snapshot
     */
    public NoSuchSnapshotException(String resource, String snapshot) {
        super(resource, -1, "no snapshot with id or name '" + Objects.requireNonNull(snapshot, "snapshot") + "'", null);
        this.snapshot = snapshot;
    }

    /** The id or name that matched no snapshot. */
    public String snapshot() {
        return snapshot;
    }
}
