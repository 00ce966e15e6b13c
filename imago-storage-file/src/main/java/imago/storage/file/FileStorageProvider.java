package imago.storage.file;

import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import imago.storage.file.internal.FileStorage;
import java.io.IOException;
import java.util.Objects;

/**
 * Opens local files (scheme {@code file}). Native support is bound lazily, on the first open.
 */
public final class FileStorageProvider implements StorageProvider {

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public FileStorageProvider() {
    }

    /** {@return {@code "file"}} */
    @Override
    public String scheme() {
        return "file";
    }

    /**
     * Opens the file at {@code location.path()}.
     *
     * @throws IllegalArgumentException if {@code location} is not a {@code file} location
     * @throws java.nio.file.NoSuchFileException if the file does not exist and {@code create} is not set
     * @throws imago.api.ImageLockedException if a lock is requested and another open holds a conflicting one
     * @throws imago.api.UnsupportedFeatureException if direct I/O is requested and not available
     * @throws IOException if the file cannot be opened, e.g. it is a directory
     */
    @Override
    public Storage open(StorageLocation location, StorageOptions options) throws IOException {
        Objects.requireNonNull(location, "location");
        Objects.requireNonNull(options, "options");
        if (!location.scheme().equals(scheme())) {
            throw new IllegalArgumentException("not a file location: " + location);
        }
        return FileStorage.open(location, options);
    }
}
