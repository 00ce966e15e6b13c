package imago.api.spi;

/**
 * How to open a storage.
 *
 * @param writable open for writing (else read-only)
 * @param create create the storage, or truncate it to empty if it exists (implies writable)
 * @param directIO bypass the host page cache (O_DIRECT) where the provider supports it
 * @param lock take an advisory lock (shared for readers, exclusive for writers) where supported
 * @param shareWrites with {@code lock}: let other processes write the file while this open holds it, and do not
 *        claim to resize it, as QEMU's raw format does for qemu-img and qemu-io (its data has no metadata that a
 *        second writer could corrupt); off for every format with metadata, which must keep other writers out
 * @param resizes with {@code shareWrites} and {@code writable}: this open changes the file's size (qemu-img resize),
 *        so it claims resizing too and a holder that does not share it refuses the open (a writable open without
 *        {@code shareWrites} always claims it: a format with metadata may grow its file)
 */
public record StorageOptions(boolean writable, boolean create, boolean directIO, boolean lock, boolean shareWrites,
        boolean resizes) {

    /** Validates the combination. */
    public StorageOptions {
        if (create && !writable) {
            throw new IllegalArgumentException("create requires writable");
        }
    }

    /** Options that keep other writers out (as before {@code shareWrites} existed). */
    public StorageOptions(boolean writable, boolean create, boolean directIO, boolean lock) {
        this(writable, create, directIO, lock, false, false);
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
        return new StorageOptions(writable, create, on, lock, shareWrites, resizes);
    }

    /** The same options with locking on or off. */
    public StorageOptions withLock(boolean on) {
        return new StorageOptions(writable, create, directIO, on, shareWrites, resizes);
    }

    /** The same options with other writers let in or kept out (see {@link #shareWrites()}). */
    public StorageOptions withSharedWrites(boolean on) {
        return new StorageOptions(writable, create, directIO, lock, on, resizes);
    }

    /** The same options claiming resizing or not (see {@link #resizes()}). */
    public StorageOptions withResizing(boolean on) {
        return new StorageOptions(writable, create, directIO, lock, shareWrites, on);
    }
}
