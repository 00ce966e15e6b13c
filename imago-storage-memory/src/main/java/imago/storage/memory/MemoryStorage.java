package imago.storage.memory;

import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.file.NoSuchFileException;
import java.util.Collections;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * A handle on a named, sparse, in-memory byte store: the {@code memory:} storage.
 *
 * <p>Stores live in a process-wide registry under their names, like files under their paths: several
 * handles (read-write or read-only) may be open on one store and see each other's writes, a store
 * outlives its handles until it is {@link #delete deleted}, and a store that is deleted stays usable
 * through the handles already open on it (as an unlinked file does). Names are flat: any non-empty
 * string, never parsed.
 *
 * <p>The content is kept in chunks of {@value #DEFAULT_CHUNK_SIZE} bytes, allocated on first write.
 * Chunks never written read as zeroes and are holes for {@link #dataExtent}; zeroing with
 * {@code mayUnmap}, {@link #discard} and shrinking drop the chunks they cover entirely. Memory holds no
 * stale data, so a discarded range always reads as zeroes afterwards.
 *
 * <p>Thread-safe: requests on disjoint ranges run concurrently; {@link #resize} excludes every other
 * request on the same store. {@link #flush} and {@link #sync} have nothing to do.
 */
public final class MemoryStorage implements Storage {
    /** The default chunk size: the granularity of allocation, holes and {@link #allocatedSize()}. */
    public static final int DEFAULT_CHUNK_SIZE = 64 * 1024;

    private static final ConcurrentMap<String, MemoryContent> REGISTRY = new ConcurrentHashMap<>();

    private final StorageLocation location;
    private final String name;
    private final MemoryContent content;
    private final boolean readOnly;
    private volatile boolean closed;

    private MemoryStorage(String bareName, MemoryContent content, boolean readOnly) {
        this.location = StorageLocation.memory(bareName);
        this.name = location.toString();
        this.content = content;
        this.readOnly = readOnly;
    }

    // ---------------------------------------------------------------- registry

    /**
     * Creates the store {@code name}, empty, or truncates it to empty if it exists (as
     * {@link StorageOptions#create()} does), and returns a read-write handle on it.
     *
     * @throws IllegalArgumentException if {@code name} is empty
     */
    public static MemoryStorage create(String name) {
        return create(name, DEFAULT_CHUNK_SIZE);
    }

    /**
     * {@link #create(String)} with a chunk size for a store that does not exist yet (an existing store
     * keeps its own): small chunks make chunk boundaries frequent in tests.
     */
    static MemoryStorage create(String name, int chunkSize) {
        checkName(name);
        MemoryContent content = REGISTRY.computeIfAbsent(name, n -> new MemoryContent(chunkSize));
        content.resize(0, false);
        return new MemoryStorage(name, content, false);
    }

    /**
     * Creates (or truncates) the store {@code name} holding a copy of {@code initialContent}, and returns
     * a read-write handle on it. Every chunk the content covers is allocated, zero or not, as writing
     * the bytes to a file would.
     *
     * @throws IllegalArgumentException if {@code name} is empty
     */
    public static MemoryStorage of(String name, byte[] initialContent) {
        return of(name, ByteBuffer.wrap(initialContent));
    }

    /**
     * Creates (or truncates) the store {@code name} holding a copy of the remaining bytes of
     * {@code initialContent}, and returns a read-write handle on it. The buffer's position is not
     * changed.
     *
     * @throws IllegalArgumentException if {@code name} is empty
     */
    public static MemoryStorage of(String name, ByteBuffer initialContent) {
        Objects.requireNonNull(initialContent, "initialContent");
        MemoryStorage storage = create(name);
        storage.content.write(initialContent.duplicate(), 0);
        return storage;
    }

    /**
     * Opens a new handle on the existing store {@code name}.
     *
     * @throws NoSuchFileException if there is no store of that name (the message is its location,
     *         {@code memory:name})
     * @throws IllegalArgumentException if {@code name} is empty
     */
    public static MemoryStorage open(String name, boolean writable) throws NoSuchFileException {
        return open(name, writable ? StorageOptions.readWrite() : StorageOptions.readOnly());
    }

    /**
     * Opens a handle as {@code options} say; {@code directIO} and {@code lock} do not apply to memory and
     * are ignored.
     */
    static MemoryStorage open(String name, StorageOptions options) throws NoSuchFileException {
        Objects.requireNonNull(options, "options");
        if (options.create()) {
            return create(name);
        }
        checkName(name);
        MemoryContent content = REGISTRY.get(name);
        if (content == null) {
            throw new NoSuchFileException(StorageLocation.memory(name).toString());
        }
        return new MemoryStorage(name, content, !options.writable());
    }

    /** Whether a store named {@code name} exists. */
    public static boolean exists(String name) {
        return REGISTRY.containsKey(Objects.requireNonNull(name, "name"));
    }

    /**
     * Removes the store {@code name} from the registry, so that it can no longer be opened; handles
     * already open on it keep working until closed, and its memory is freed with the last of them.
     *
     * @return whether there was such a store
     */
    public static boolean delete(String name) {
        return REGISTRY.remove(Objects.requireNonNull(name, "name")) != null;
    }

    /** The names of all stores, sorted: lets tests check that they cleaned up. */
    public static Set<String> names() {
        return Collections.unmodifiableSet(new TreeSet<>(REGISTRY.keySet()));
    }

    private static void checkName(String name) {
        Objects.requireNonNull(name, "name");
        if (name.isEmpty()) {
            throw new IllegalArgumentException("a memory storage name must not be empty");
        }
    }

    /** Another handle on the same store that refuses writes; it stays open when this one is closed. */
    public MemoryStorage readOnlyView() {
        return new MemoryStorage(location.name(), content, true);
    }

    /** The size of the chunks this store allocates. */
    public int chunkSize() {
        return content.chunkSize();
    }

    // ---------------------------------------------------------------- Storage

    /** {@inheritDoc} For memory storages, {@code memory:} followed by the store's name. */
    @Override
    public String name() {
        return name;
    }

    @Override
    public StorageLocation location() {
        return location;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    /**
     * {@inheritDoc}
     *
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public long size() throws IOException {
        ensureOpen();
        return content.size();
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if {@code offset} is negative or the range overflows
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        ensureOpen();
        checkRange(offset, dst.remaining());
        content.read(dst, offset);
    }

    /**
     * {@inheritDoc}
     *
     * @throws ReadOnlyImageException if this handle is read-only
     * @throws IllegalArgumentException if {@code offset} is negative or the range overflows
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        ensureWritable(offset);
        checkRange(offset, src.remaining());
        content.write(src, offset);
    }

    /**
     * {@inheritDoc} With {@code mayUnmap}, the chunks the range covers entirely are dropped and become
     * holes; without it, allocated chunks are zero-filled and stay allocated. Holes stay holes either
     * way. The store grows to the end of the range, as it would by writing zeroes.
     *
     * @throws ReadOnlyImageException if this handle is read-only
     * @throws IllegalArgumentException if the range is negative or overflows
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        ensureWritable(offset);
        checkRange(offset, length);
        content.zero(offset, length, mayUnmap, true);
    }

    /**
     * {@inheritDoc} Memory has no stale data to keep: the range reads as zeroes afterwards, the chunks
     * it covers entirely are dropped, and the size does not change.
     *
     * @throws ReadOnlyImageException if this handle is read-only
     * @throws IllegalArgumentException if the range is negative or overflows
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        ensureWritable(offset);
        checkRange(offset, length);
        content.zero(offset, length, true, false);
    }

    /**
     * Nothing to do: memory has no lower layer.
     *
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void flush() throws IOException {
        ensureOpen();
    }

    /**
     * Nothing to do: memory is not durable.
     *
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void sync() throws IOException {
        ensureOpen();
    }

    /**
     * {@inheritDoc} Every mode is supported: {@link Preallocation#FALLOC} and {@link Preallocation#FULL}
     * allocate the chunks of the grown space, {@link Preallocation#OFF} and {@link Preallocation#METADATA}
     * leave it as a hole. Shrinking frees the chunks past the new end.
     *
     * @throws ReadOnlyImageException if this handle is read-only
     * @throws IllegalArgumentException if {@code size} is negative
     * @throws IOException if preallocation asks for more memory than the JVM may ever use
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        Objects.requireNonNull(preallocation, "preallocation");
        ensureWritable(-1);
        if (size < 0) {
            throw new IllegalArgumentException(name + ": size must be non-negative, got " + size);
        }
        boolean allocate = preallocation == Preallocation.FALLOC || preallocation == Preallocation.FULL;
        if (allocate) {
            long grow = size - content.size();
            long heap = Runtime.getRuntime().maxMemory();
            if (grow > heap) {
                throw new IOException(name + ": cannot preallocate " + grow + " bytes in memory: the Java heap "
                        + "is limited to " + heap + " bytes");
            }
        }
        content.resize(size, allocate);
    }

    /** {@inheritDoc} Any non-empty name resolves to the memory storage of that name, taken literally. */
    @Override
    public Optional<StorageLocation> resolve(String storedName) {
        Objects.requireNonNull(storedName, "storedName");
        return storedName.isEmpty() ? Optional.empty() : Optional.of(StorageLocation.memory(storedName));
    }

    /**
     * {@inheritDoc} Data runs are runs of allocated chunks, cut at the size.
     *
     * @throws IllegalArgumentException if {@code offset} is negative or {@code maxLength < 1}
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        ensureOpen();
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(name + ": bad extent query at offset " + offset + ", length "
                    + maxLength);
        }
        return content.dataExtent(offset, maxLength);
    }

    /**
     * {@inheritDoc} The bytes of the chunks held.
     *
     * @throws ClosedChannelException if this handle is closed
     */
    @Override
    public OptionalLong allocatedSize() throws IOException {
        ensureOpen();
        return OptionalLong.of(content.allocatedBytes());
    }

    /** Closes this handle; the store stays in the registry and other handles stay open. */
    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "MemoryStorage[" + name + (readOnly ? ", read-only" : "") + (closed ? ", closed" : "") + "]";
    }

    // ---------------------------------------------------------------- checks

    private void ensureOpen() throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
    }

    private void ensureWritable(long offset) throws IOException {
        ensureOpen();
        if (readOnly) {
            throw new ReadOnlyImageException(name, offset, "storage is opened read-only");
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException(name + ": bad range: offset " + offset + ", length " + length);
        }
    }
}
