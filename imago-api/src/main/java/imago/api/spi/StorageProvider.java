package imago.api.spi;

import imago.api.StorageLocation;
import java.io.IOException;

/**
 * Opens storages of one {@link #scheme() scheme}. Found with {@link java.util.ServiceLoader}; a
 * provider does no work in its constructor.
 */
public interface StorageProvider {

    /** The scheme this provider serves, e.g. {@code file}; lower-case ASCII, unique. */
    String scheme();

    /**
     * Opens (or creates) the storage at {@code location}.
     *
     * @throws java.nio.file.NoSuchFileException if it does not exist and {@code create} is not set
     * @throws imago.api.ImageLockedException if a lock is requested and held elsewhere
     * @throws IOException if it cannot be opened
     */
    Storage open(StorageLocation location, StorageOptions options) throws IOException;
}
