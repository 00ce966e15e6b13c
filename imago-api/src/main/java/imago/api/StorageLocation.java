package imago.api;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Where a storage lives: the {@link imago.api.spi.StorageProvider#scheme() scheme} of the provider that opens it and
 * a name in that provider's namespace. Locations are built by code, never parsed from a string that an
 * image stores, so a stored name cannot select a protocol.
 *
 * @param scheme the provider scheme, e.g. {@code file} or {@code memory}
 * @param name the name within that scheme (an absolute path for {@code file})
 */
public record StorageLocation(String scheme, String name) {

    /** Validates the fields. */
    public StorageLocation {
        Objects.requireNonNull(scheme, "scheme");
        Objects.requireNonNull(name, "name");
        if (!scheme.matches("[a-z][a-z0-9]*")) {
            throw new IllegalArgumentException("bad storage scheme: " + scheme);
        }
    }

    /** The location of a file, made absolute and normalised. */
    public static StorageLocation file(Path path) {
        return new StorageLocation("file", path.toAbsolutePath().normalize().toString());
    }

    /** The location of an in-memory storage. */
    public static StorageLocation memory(String name) {
        return new StorageLocation("memory", name);
    }

    /** For {@code file} locations, the path. @throws IllegalStateException for other schemes */
    public Path path() {
        if (!scheme.equals("file")) {
            throw new IllegalStateException("not a file location: " + this);
        }
        return Path.of(name);
    }

    /** The name alone for a file, or for a name that is a URI already ({@code nbd://...}); else scheme:name. */
    @Override
    public String toString() {
        return scheme.equals("file") || name.startsWith(scheme) && name.contains("://") ? name : scheme + ":" + name;
    }
}
