package imago.storage.file.internal;

import imago.api.StorageLocation;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Optional;

/** How a file name stored inside an image (a backing, data or extent file) resolves against the image's file. */
final class StoredNames {
    private StoredNames() {
    }

    /**
     * {@code storedName} for the image at {@code image}: an absolute name as it is, a relative one against the
     * image's directory; nothing for an empty name, a name with NUL, or one the file system cannot take as a path.
     */
    static Optional<StorageLocation> resolve(Path image, String storedName) {
        if (storedName.isEmpty() || storedName.indexOf('\0') >= 0) {
            return Optional.empty();
        }
        Path stored;
        try {
            stored = image.getFileSystem().getPath(storedName);
        } catch (InvalidPathException e) {
            return Optional.empty();
        }
        if (!stored.isAbsolute()) {
            Path dir = image.toAbsolutePath().getParent();
            stored = dir == null ? stored.toAbsolutePath() : dir.resolve(stored);
        }
        return Optional.of(StorageLocation.file(stored));
    }
}
