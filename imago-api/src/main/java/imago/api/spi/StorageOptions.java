package imago.api.spi;

/**
 * How to open a storage.
 *
 * @param writable open for writing (else read-only)
 * @param create create the storage, or truncate it to empty if it exists (implies writable)
 * @param directIO bypass the host page cache (O_DIRECT) where the provider supports it
 * @param lock take an advisory lock (shared for readers, exclusive for writers) where supported
 */
public record StorageOptions(boolean writable, boolean create, boolean directIO, boolean lock) {

    /** Validates the combination. */
    public StorageOptions {
        if (create && !writable) {
            throw new IllegalArgumentException("create requires writable");
        }
    }

    /** Read-only, locked. */
    public static StorageOptions readOnly() {
        return new StorageOptions(false, false, false, true);
    }

    /** Read-write, locked. */
    public static StorageOptions readWrite() {
        return new StorageOptions(true, false, false, true);
    }

    /** Create or truncate, locked. */
    public static StorageOptions createNew() {
        return new StorageOptions(true, true, false, true);
    }

    /** The same options with direct I/O on or off. */
    public StorageOptions withDirectIO(boolean on) {
        return new StorageOptions(writable, create, on, lock);
    }

    /** The same options with locking on or off. */
    public StorageOptions withLock(boolean on) {
        return new StorageOptions(writable, create, directIO, on);
    }
}
