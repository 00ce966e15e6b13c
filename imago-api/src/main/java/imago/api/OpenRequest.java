package imago.api;

import java.util.Objects;

/**
 * A file that an image names and that is about to be opened.
 *
 * @param referrer the image that names it
 * @param storedName the name exactly as stored in the image (untrusted)
 * @param target where that name resolves to
 * @param purpose why it is opened
 * @param depth how deep in the chain the naming image is (0 = the image the user opened)
 */
public record OpenRequest(StorageLocation referrer, String storedName, StorageLocation target, Purpose purpose,
        int depth) {

    /** Why a named file is opened. */
    public enum Purpose {
        /** As a backing image. */
        BACKING_FILE,
        /** As an external data file. */
        DATA_FILE,
        /** As a file that holds part of the image's own data (a VMDK extent, one file of a split image). */
        EXTENT_FILE
    }

    /** Validates the fields. */
    public OpenRequest {
        Objects.requireNonNull(referrer, "referrer");
        Objects.requireNonNull(storedName, "storedName");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(purpose, "purpose");
    }
}
