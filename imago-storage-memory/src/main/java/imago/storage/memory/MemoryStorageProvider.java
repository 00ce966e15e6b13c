package imago.storage.memory;

import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import java.io.IOException;
import java.util.Objects;

/**
 * Opens {@link MemoryStorage memory storages} by their {@code memory:} location. Options
 * {@code directIO} and {@code lock} do not apply to memory and are ignored; {@code create} creates the
 * store or truncates it to empty.
 */
public final class MemoryStorageProvider implements StorageProvider {

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public MemoryStorageProvider() {
    }

    /** {@inheritDoc} Always {@code memory}. */
    @Override
    public String scheme() {
        return "memory";
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code location} is not a {@code memory} location or its name
     *         is empty
     * @throws java.nio.file.NoSuchFileException if the store does not exist and {@code create} is not set
     */
    @Override
    public Storage open(StorageLocation location, StorageOptions options) throws IOException {
        Objects.requireNonNull(location, "location");
        if (!location.scheme().equals(scheme())) {
            throw new IllegalArgumentException("not a memory location: " + location);
        }
        return MemoryStorage.open(location.name(), options);
    }
}
