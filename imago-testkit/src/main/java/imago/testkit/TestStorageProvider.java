package imago.testkit;

import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import java.nio.file.NoSuchFileException;

/** Opens the {@link TestStorages} disks: {@code testkit:} locations, each through an {@link AssertingStorage}. */
public final class TestStorageProvider implements StorageProvider {

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public TestStorageProvider() {
    }

    /** {@inheritDoc} Always {@code testkit}. */
    @Override
    public String scheme() {
        return TestStorages.SCHEME;
    }

    /**
     * {@inheritDoc}
     *
     * @throws NoSuchFileException if there is no such disk and {@code create} is not set
     */
    @Override
    public Storage open(StorageLocation location, StorageOptions options) throws NoSuchFileException {
        if (!location.scheme().equals(scheme())) {
            throw new IllegalArgumentException("not a " + scheme() + " location: " + location);
        }
        Storage s = TestStorages.open(location.name(), !options.writable(), options.create());
        if (s == null) {
            throw new NoSuchFileException(location.toString());
        }
        return s;
    }
}
