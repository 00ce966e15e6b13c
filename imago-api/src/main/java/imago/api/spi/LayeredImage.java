package imago.api.spi;

import imago.api.CheckReport;
import imago.api.CorruptImageException;
import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageInfo;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.SnapshotInfo;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The one generic I/O path: an {@link Image} made of a {@link FormatInstance} layer, the storage it
 * lives on and an optional backing image. It splits every request by the layer's mappings, reads data
 * mappings from storage, fills zeroes, recurses into the backing chain for unallocated ranges, asks the
 * driver to decode special mappings, and for writes asks the driver for a data mapping and writes it.
 * Drivers only describe mappings.
 *
 * <p>Requests run concurrently; only {@link #resize} and {@link #close} exclude everything else.
 * Built by the probe module (or a test) through {@link #builder}.
 */
public final class LayeredImage implements Image {

    private final String format;
    private final FormatInstance layer;
    private final Storage storage;
    private final Image backing;
    private final boolean ownsBacking;
    private final boolean readOnly;
    private final WriteGuard guard;
    private final List<Closeable> alsoClose;
    private final BackingReader below;
    /** Read side: every request. Write side: resize and close, which change what requests see. */
    private final ReentrantReadWriteLock lifecycle = new ReentrantReadWriteLock();
    /** Serialises guarded writes to the first sector, so the guard sees what the write produces. */
    private final ReentrantLock guardLock = new ReentrantLock();
    private volatile boolean closed;

    private LayeredImage(Builder b) {
        this.format = b.format;
        this.layer = b.layer;
        this.storage = b.storage;
        this.backing = b.backing;
        this.ownsBacking = b.ownsBacking;
        this.readOnly = b.readOnly;
        this.guard = b.guard;
        this.alsoClose = List.copyOf(b.alsoClose);
        this.below = backing == null ? BackingReader.ZEROES : new BackingReader() {
            @Override
            public void read(ByteBuffer dst, long offset) throws IOException {
                readBacking(dst, offset);
            }

            @Override
            public boolean readsAsZero(long offset, long length) throws IOException {
                return backingReadsAsZero(offset, length);
            }
        };
    }

    /**
     * Starts building an image of {@code layer}, opened by the driver named {@code format} on
     * {@code storage}.
     */
    public static Builder builder(String format, FormatInstance layer, Storage storage) {
        return new Builder(format, layer, storage);
    }

    @Override
    public String name() {
        return storage.name();
    }

    @Override
    public String format() {
        return format;
    }

    @Override
    public long size() {
        return layer.size();
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    /** The layer this image reads and writes through. */
    public FormatInstance layer() {
        return layer;
    }

    /** The storage the layer lives on. */
    public Storage storage() {
        return storage;
    }

    @Override
    public Optional<Image> backing() {
        return Optional.ofNullable(backing);
    }

    // ---------------------------------------------------------------- reads

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            checkRange("read", offset, dst.remaining());
            readLayer(dst, offset);
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    private void readLayer(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            Mapping m = checked(layer.readMapping(pos, dst.remaining()), pos, dst.remaining());
            int n = (int) m.length();
            ByteBuffer part = dst.slice(dst.position(), n);
            switch (m) {
                case Mapping.Data d -> d.storage().read(part, d.hostOffset());
                case Mapping.Zero z -> fillZero(part);
                case Mapping.Unallocated u -> readBacking(part, pos);
                case Mapping.Special s -> layer.readSpecial(s, part, pos);
                case Mapping.EndOfImage e -> throw new IllegalStateException("unreachable");
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    /** What lies below this layer: the backing image's bytes, zeroes past its end or without one. */
    private void readBacking(ByteBuffer dst, long offset) throws IOException {
        int n = dst.remaining();
        long inBacking = backing == null ? 0 : Math.max(0, Math.min(n, backing.size() - offset));
        if (inBacking > 0) {
            backing.read(dst.slice(dst.position(), (int) inBacking), offset);
        }
        if (inBacking < n) {
            fillZero(dst.slice(dst.position() + (int) inBacking, n - (int) inBacking));
        }
        dst.position(dst.limit());
    }

    /**
     * Whether the backing image reads as zero in {@code [offset, offset + length)} by its extents (QEMU's
     * block status, as a zero write's "does the rest of the cluster read as zero" asks it); past its end
     * everything does.
     */
    private boolean backingReadsAsZero(long offset, long length) throws IOException {
        long end = Math.min(offset + length, backing.size());
        for (long pos = offset; pos < end; ) {
            Extent e = backing.extent(pos, end - pos);
            if (!e.zero()) {
                return false;
            }
            pos += e.length();
        }
        return true;
    }

    private static void fillZero(ByteBuffer part) {
        MemorySegment.ofBuffer(part).fill((byte) 0);
    }

    // ---------------------------------------------------------------- writes

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureWritable();
            checkRange("write", offset, src.remaining());
            if (guard != null && offset < WriteGuard.GUARDED_BYTES && src.hasRemaining()) {
                guardLock.lock();
                try {
                    checkGuard(src, offset);
                    writeLayer(src, offset);
                } finally {
                    guardLock.unlock();
                }
            } else {
                writeLayer(src, offset);
            }
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    private void writeLayer(ByteBuffer src, long offset) throws IOException {
        long pos = offset;
        while (src.hasRemaining()) {
            try (WriteTicket t = layer.beginWrite(pos, src.remaining(), below)) {
                int n = (int) checked(t.mapping(), pos, src.remaining()).length();
                // a failed write closes the ticket uncommitted: the layer rolls the allocation back
                t.write(src.slice(src.position(), n));
                t.commit();
                src.position(src.position() + n);
                pos += n;
            }
        }
    }

    @Override
    public void writeCompressed(ByteBuffer src, long offset) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureWritable();
            int length = src.remaining();
            checkRange("compressed write", offset, length);
            CompressedWriter writer = layer.capability(CompressedWriter.class).orElseThrow(() ->
                    new UnsupportedFeatureException(name(), Feature.COMPRESSED_WRITES, "the " + format
                            + " format cannot store compressed data"));
            long unit = layer.clusterSize().orElseThrow(() -> new IllegalStateException(format + " driver stores "
                    + "compressed clusters but has no cluster size"));
            long size = size();
            if (offset % unit != 0 || length != unit && !(length > 0 && length < unit && offset + length == size)) {
                throw new IllegalArgumentException(name() + ": a compressed write must cover one whole "
                        + unit + "-byte cluster (or the last cluster up to the end of the image), got " + length
                        + " bytes at offset " + offset);
            }
            if (guard != null && offset < WriteGuard.GUARDED_BYTES) {
                guardLock.lock();
                try {
                    checkGuard(src, offset);
                    writeCompressedLayer(writer, src, offset);
                } finally {
                    guardLock.unlock();
                }
            } else {
                writeCompressedLayer(writer, src, offset);
            }
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    private void writeCompressedLayer(CompressedWriter writer, ByteBuffer src, long offset) throws IOException {
        if (writer.writeCompressed(src, offset)) {
            src.position(src.limit());
        } else {
            // the data does not shrink: stored the ordinary way, as QEMU does
            writeLayer(src, offset);
        }
    }

    /** Builds the first sector as it will be after writing {@code src} at {@code offset}, and asks the guard. */
    private void checkGuard(ByteBuffer src, long offset) throws IOException {
        int sector = (int) Math.min(WriteGuard.GUARDED_BYTES, size());
        ByteBuffer first = ByteBuffer.allocate(sector);
        readLayer(first, 0);
        int n = (int) Math.min(src.remaining(), sector - offset);
        first.put((int) offset, src, src.position(), n);
        guard.check(first.clear().asReadOnlyBuffer());
    }

    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureWritable();
            checkRange("write zeroes", offset, length);
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                long handled = layer.ensureZeroMapping(pos, end - pos, flags, below);
                if (handled < 0 || handled > end - pos) {
                    throw new IllegalStateException(format + " driver zeroed " + handled + " bytes of a "
                            + (end - pos) + "-byte request");
                }
                if (handled == 0) {
                    if (flags.contains(ZeroFlag.NO_FALLBACK)) {
                        throw new UnsupportedFeatureException(name(), Feature.EFFICIENT_ZEROES,
                                "cannot zero " + (end - pos) + " bytes at offset " + pos + " without writing zeroes");
                    }
                    // write zeroes up to the next allocation unit, then ask the driver again
                    long unit = layer.zeroAlignment().orElse(ZeroBuffers.SIZE);
                    long unitEnd = (pos / unit + 1) * unit;
                    int n = (int) Math.min(Math.min(ZeroBuffers.SIZE, end - pos), unitEnd - pos);
                    ByteBuffer zeroes = ZeroBuffers.zeroes(n);
                    if (guard != null && pos < WriteGuard.GUARDED_BYTES) {
                        guardLock.lock();
                        try {
                            checkGuard(zeroes, pos);
                            writeLayer(zeroes, pos);
                        } finally {
                            guardLock.unlock();
                        }
                    } else {
                        writeLayer(zeroes, pos);
                    }
                    handled = n;
                }
                pos += handled;
            }
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureWritable();
            checkRange("discard", offset, length);
            if (length > 0) {
                layer.discard(offset, length);
            }
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    @Override
    public void flush() throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            if (!readOnly) {
                layer.flush();
                layer.sync();
            }
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    @Override
    public void resize(long newSize, Preallocation preallocation) throws IOException {
        Objects.requireNonNull(preallocation, "preallocation");
        if (newSize < 0) {
            throw new IllegalArgumentException("Image size must be non-negative, got " + newSize);
        }
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            capability(Resizer.class, Feature.RESIZE, "the " + format + " format cannot be resized")
                    .resize(newSize, preallocation, below);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public void makeEmpty() throws IOException {
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            backingRewriter("this image cannot be emptied").makeEmpty();
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public void changeBackingFile(String storedName, String format) throws IOException {
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            backingRewriter("this image cannot name a backing file").changeBackingFile(storedName, format);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public SnapshotInfo createSnapshot(String name) throws IOException {
        Objects.requireNonNull(name, "name");
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            return snapshots().create(name);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public void deleteSnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            snapshots().delete(idOrName);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    /** {@inheritDoc} Excludes every other request, as the guest bytes and the size change at once. */
    @Override
    public void applySnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        lifecycle.writeLock().lock();
        try {
            ensureWritable();
            snapshots().apply(idOrName);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public boolean supports(Feature feature) {
        return switch (feature) {
            case CHECK -> layer.capability(Checker.class).isPresent();
            case RESIZE -> layer.capability(Resizer.class).isPresent();
            case INTERNAL_SNAPSHOTS -> layer.capability(InternalSnapshots.class).isPresent();
            case COMPRESSED_WRITES -> layer.capability(CompressedWriter.class).isPresent();
            case BACKING_FILE -> layer.capability(BackingRewriter.class).isPresent();
            case RANDOM_WRITES -> layer.randomWrites();
            default -> Image.super.supports(feature);
        };
    }

    /** The layer's capability {@code type}, or the exception a request for it throws. */
    private <C extends Capability> C capability(Class<C> type, Feature feature, String detail)
            throws UnsupportedFeatureException {
        return layer.capability(type).orElseThrow(() -> new UnsupportedFeatureException(name(), feature, detail));
    }

    private BackingRewriter backingRewriter(String detail) throws UnsupportedFeatureException {
        return capability(BackingRewriter.class, Feature.BACKING_FILE, detail);
    }

    private InternalSnapshots snapshots() throws UnsupportedFeatureException {
        return capability(InternalSnapshots.class, Feature.INTERNAL_SNAPSHOTS, "the " + format
                + " format has no internal snapshots");
    }

    // ---------------------------------------------------------------- mappings

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            checkQuery(offset, maxLength);
            long len = Math.min(maxLength, size() - offset);
            return checked(layer.mapping(offset, len), offset, len);
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    @Override
    public Extent extent(long offset, long maxLength) throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            checkQuery(offset, maxLength);
            long len = Math.min(maxLength, size() - offset);
            Mapping m = checked(layer.mapping(offset, len), offset, len);
            long n = m.length();
            return switch (m) {
                case Mapping.Data d -> layer.mapsStorageHoles() ? dataExtent(d, offset, n)
                        : Extent.data(offset, n, d.hostOffset(), d.storage().name());
                case Mapping.Zero z -> z.reserved() ? Extent.zero(offset, n, z.hostOffset(), z.storage().name())
                        : Extent.zero(offset, n);
                case Mapping.Special s -> Extent.compressed(offset, n);
                case Mapping.Unallocated u -> {
                    if (backing == null || offset >= backing.size()) {
                        // QEMU: nothing below, so the bytes read as zero, and no layer holds them; host
                        // space set aside for them is still shown
                        yield u.reserved() ? Extent.absent(offset, n, u.hostOffset(), u.storage().name())
                                : Extent.absent(offset, n);
                    }
                    yield backing.extent(offset, Math.min(n, backing.size() - offset)).deeper(1);
                }
                case Mapping.EndOfImage e -> throw new IllegalStateException("unreachable");
            };
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    /**
     * A data mapping of a layer that {@link FormatInstance#mapsStorageHoles() maps storage holes}, as
     * {@code qemu-img map} shows it: the extent is cut at the storage's data/hole boundary and marked
     * zero where the storage has a hole; past the end of the storage everything reads as zero.
     */
    private static Extent dataExtent(Mapping.Data d, long offset, long n) throws IOException {
        Storage s = d.storage();
        long host = d.hostOffset();
        boolean zero;
        long length = n;
        if (host >= s.size()) {
            zero = true;
        } else {
            StorageExtent se = s.dataExtent(host, n);
            length = Math.min(n, se.length());
            zero = !se.data();
        }
        return zero ? Extent.dataInHole(offset, length, host, s.name()) : Extent.data(offset, length, host, s.name());
    }

    @Override
    public ImageInfo info() throws IOException {
        lifecycle.readLock().lock();
        try {
            ensureOpen();
            Optional<Dependency.BackingFile> bf = layer.dependencies().stream()
                    .filter(Dependency.BackingFile.class::isInstance).map(Dependency.BackingFile.class::cast)
                    .findFirst();
            Optional<String> stored = bf.map(Dependency.BackingFile::storedName);
            Optional<String> full = stored.flatMap(storage::resolve).map(StorageLocation::toString);
            return new ImageInfo(storage.name(), format, size(), storage.allocatedSize(), layer.clusterSize(),
                    layer.dirty(), stored, full, bf.flatMap(Dependency.BackingFile::format), layer.formatSpecific(),
                    layer.capability(InternalSnapshots.class).map(InternalSnapshots::list).orElse(List.of()));
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    @Override
    public CheckReport check(Repair repair) throws IOException {
        Objects.requireNonNull(repair, "repair");
        // a check must see metadata no request is changing, and a repair must change it alone
        lifecycle.writeLock().lock();
        try {
            ensureOpen();
            if (repair != Repair.NONE && readOnly) {
                throw new ReadOnlyImageException(storage.name(), "cannot repair an image opened read-only");
            }
            return capability(Checker.class, Feature.CHECK, "This image format does not support checks").check(repair);
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    // ---------------------------------------------------------------- close

    @Override
    public void close() throws IOException {
        lifecycle.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            IOException failure = null;
            if (!readOnly) {
                try {
                    layer.flush();
                    layer.sync();
                } catch (IOException e) {
                    failure = e;
                }
            }
            List<AutoCloseable> order = new ArrayList<>();
            order.add(layer);
            order.addAll(alsoClose);
            order.add(storage);
            if (ownsBacking && backing != null) {
                order.add(backing);
            }
            for (AutoCloseable c : order) {
                try {
                    c.close();
                } catch (Exception e) {
                    IOException io = e instanceof IOException x ? x : new IOException(e);
                    if (failure == null) {
                        failure = io;
                    } else {
                        failure.addSuppressed(io);
                    }
                }
            }
            if (failure != null) {
                throw failure;
            }
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    // ---------------------------------------------------------------- checks

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(name() + ": image is closed");
        }
    }

    private void ensureWritable() throws ReadOnlyImageException {
        ensureOpen();
        if (readOnly) {
            throw new ReadOnlyImageException(name(), "image is opened read-only");
        }
    }

    private void checkRange(String what, long offset, long length) {
        long size = size();
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new IllegalArgumentException(name() + ": " + what + " of " + length + " bytes at offset "
                    + offset + " is outside the image (size " + size + ")");
        }
    }

    private void checkQuery(long offset, long maxLength) {
        if (offset < 0 || offset >= size() || maxLength < 1) {
            throw new IllegalArgumentException(name() + ": no mapping at offset " + offset + " (size " + size()
                    + ", length " + maxLength + ")");
        }
    }

    /** Holds the driver to the mapping contract, so a buggy or confused driver cannot misdirect I/O. */
    private <M extends Mapping> M checked(M m, long offset, long maxLength) throws ImageException {
        if (m instanceof Mapping.EndOfImage) {
            throw new CorruptImageException(name(), "image ends at guest offset " + offset + " before its size "
                    + size());
        }
        if (m.offset() != offset || m.length() < 1 || m.length() > maxLength) {
            throw new IllegalStateException(format + " driver returned " + m + " for a request of " + maxLength
                    + " bytes at " + offset);
        }
        return m;
    }

    /** Builds a {@link LayeredImage}. */
    public static final class Builder {
        private final String format;
        private final FormatInstance layer;
        private final Storage storage;
        private Image backing;
        private boolean ownsBacking;
        private boolean readOnly = true;
        private WriteGuard guard;
        private final List<Closeable> alsoClose = new ArrayList<>();

        private Builder(String format, FormatInstance layer, Storage storage) {
            this.format = Objects.requireNonNull(format, "format");
            this.layer = Objects.requireNonNull(layer, "layer");
            this.storage = Objects.requireNonNull(storage, "storage");
        }

        /** The backing image; closed with this image when {@code owned}. @return this builder */
        public Builder backing(Image image, boolean owned) {
            this.backing = Objects.requireNonNull(image, "image");
            this.ownsBacking = owned;
            return this;
        }

        /** Whether writes are allowed (default: read-only). @return this builder */
        public Builder writable(boolean writable) {
            this.readOnly = !writable;
            return this;
        }

        /** A guard over writes to the first sector. @return this builder */
        public Builder writeGuard(WriteGuard writeGuard) {
            this.guard = Objects.requireNonNull(writeGuard, "writeGuard");
            return this;
        }

        /** Something to close after the layer and before the storage (e.g. a data file). @return this builder */
        public Builder alsoClose(Closeable closeable) {
            alsoClose.add(Objects.requireNonNull(closeable, "closeable"));
            return this;
        }

        /** The image. */
        public LayeredImage build() {
            return new LayeredImage(this);
        }
    }
}
