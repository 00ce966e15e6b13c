package imago.nbd.internal.client;

import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import java.io.IOException;
import java.time.Duration;
import java.util.Objects;

/**
 * Opens NBD exports as storages, by locations of scheme {@code nbd} whose name is an NBD URI
 * ({@code nbd://HOST[:PORT]/EXPORT}, {@code nbd+unix:///EXPORT?socket=PATH}). Such a location is made only from
 * what a user gives ({@code imago.nbd.NbdLocation}); the storage resolves no name stored inside an image, so an
 * image cannot make imago connect anywhere. Each storage is one connection. Options {@code create},
 * {@code directIO} and {@code lock} do not apply to an export and are ignored; a writable open of a read-only
 * export is refused.
 */
public final class NbdStorageProvider implements StorageProvider {
    /** How long the handshake, and each request, may take. */
    static final Duration TIMEOUT = Duration.ofSeconds(Long.getLong("imago.nbd.timeoutSeconds", 60));

    /** Called by {@link java.util.ServiceLoader}; does no work. */
    public NbdStorageProvider() {
    }

    /** {@inheritDoc} Always {@code nbd}. */
    @Override
    public String scheme() {
        return "nbd";
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code location} is not an {@code nbd} location holding an NBD URI
     * @throws ReadOnlyImageException if writing is asked for and the export is read-only
     * @throws imago.api.ImageException if the server cannot be reached, refuses the export or breaks the protocol
     */
    @Override
    public Storage open(StorageLocation location, StorageOptions options) throws IOException {
        Objects.requireNonNull(location, "location");
        if (!location.scheme().equals(scheme())) {
            throw new IllegalArgumentException("not an nbd location: " + location);
        }
        return open(NbdUri.parse(location.name()), options.writable(), TIMEOUT);
    }

    /** Opens {@code uri} with this timeout for the handshake and each request. */
    static Storage open(NbdUri uri, boolean writable, Duration timeout) throws IOException {
        NbdConnection connection = NbdConnection.open(uri, timeout);
        if (writable && connection.info().readOnly()) {
            connection.close();
            throw new ReadOnlyImageException(uri.text(), "NBD export is read-only");
        }
        return new NbdStorage(uri, connection, writable);
    }
}
