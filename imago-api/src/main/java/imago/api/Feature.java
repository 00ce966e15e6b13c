package imago.api;

/**
 * What an {@link UnsupportedFeatureException} says is missing, as a constant that callers can test
 * (the exception's {@link UnsupportedFeatureException#featureName() name} and message say more). The first
 * constants are the optional capabilities a format may lack; {@link Image#supports} answers for them before
 * anything is tried.
 */
public enum Feature {
    /** Checking and repairing metadata ({@code qemu-img check}). */
    CHECK,
    /** Changing the virtual size. */
    RESIZE,
    /** Internal snapshots (create, delete, apply). */
    INTERNAL_SNAPSHOTS,
    /** Storing clusters compressed. */
    COMPRESSED_WRITES,
    /** Recording a different backing file ({@code rebase}) and emptying a layer into it ({@code commit}). */
    BACKING_FILE,
    /** Zeroing by metadata alone, without writing zeroes ({@link ZeroFlag#NO_FALLBACK}). */
    EFFICIENT_ZEROES,
    /** Random writes to a format that can only append, or not write at all. */
    RANDOM_WRITES,
    /**
     * Writing again where data was written, or a part of an allocation unit: VMDK streamOptimized stores each grain
     * once, whole and compressed, in any order, as QEMU's vmdk driver does.
     */
    OVERWRITES,
    /** Zero clusters or flags in the format's metadata (qcow2 version 2 has none). */
    ZERO_CLUSTERS,
    /** A preallocation mode the format or the storage cannot do. */
    PREALLOCATION,
    /**
     * The VM state area: where QEMU's {@code savevm} keeps a snapshot's memory and device state (qcow2's, past the
     * virtual disk), read and written through {@link Image#vmState()}.
     */
    VM_STATE,
    /** Persistent dirty bitmaps in a state that forbids the operation. */
    PERSISTENT_BITMAPS,
    /** A compression type that is unknown or whose codec is not installed. */
    COMPRESSION_TYPE,
    /** Encrypted images. */
    ENCRYPTION,
    /** An operation that an image with an external data file cannot do. */
    EXTERNAL_DATA_FILE,
    /** A format version or an incompatible feature bit this implementation does not know. */
    FORMAT_VERSION,
    /** Metadata that would grow past a limit of the format's implementation (QEMU's, which imago keeps). */
    LIMITS,
    /** An operation that needs the backing chain, which is not open. */
    BACKING_CHAIN,
    /** Telling how large a new image of the format would be ({@code qemu-img measure}). */
    MEASURE,
    /** Creating images of the format: the read-only formats (bochs, cloop, dmg) cannot. */
    CREATE,
    /** Changing the format options of an existing image in place ({@code qemu-img amend}). */
    AMEND,
    /** Something the host or the JVM lacks: native access, direct I/O, fallocate. */
    HOST,
    /** Anything else; the name and message say what. */
    OTHER
}
