package imago.api.spi;

import imago.api.Bitmaps;
import imago.api.CheckReport;
import imago.api.DirtyRun;
import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageInfo;
import imago.api.Mapping;
import imago.api.PendingWrite;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.Repair;
import imago.api.SnapshotInfo;
import imago.api.VmState;
import imago.api.ZeroFlag;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

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
    private final List<Closeable> alsoClose;
    private final BackingReader below;
    private final LayerContract contract;
    private final LayerReads reads;
    private final LayerWrites writes;
    private final LayerExtents extents;
    private final LayerCapabilities capabilities;
    private final ImageLifecycle lifecycle;

    private LayeredImage(Builder b) {
        this.format = b.format;
        this.layer = b.layer;
        this.storage = b.storage;
        this.backing = b.backing;
        this.ownsBacking = b.ownsBacking;
        this.readOnly = b.readOnly;
        this.alsoClose = List.copyOf(b.alsoClose);
        this.below = backing == null ? BackingReader.ZEROES : new BackingImageReader(backing);
        this.contract = new LayerContract(storage.name(), format, layer);
        this.reads = new LayerReads(layer, below, contract);
        this.writes = new LayerWrites(storage.name(), format, layer, below, contract, reads, b.guard);
        this.extents = new LayerExtents(layer, backing, contract);
        this.capabilities = new LayerCapabilities(format, layer, storage);
        this.lifecycle = new ImageLifecycle(storage.name(), readOnly);
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
        lifecycle.requests().lock(); // not through shared(): no lambda on the hottest path
        try {
            lifecycle.ensureOpen();
            contract.checkRange("read", offset, dst.remaining());
            reads.read(dst, offset);
        } finally {
            lifecycle.requests().unlock();
        }
    }

    // ---------------------------------------------------------------- writes

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        lifecycle.requests().lock(); // not through writing(): no lambda on the hottest path
        try {
            lifecycle.ensureWritable();
            contract.checkRange("write", offset, src.remaining());
            writes.write(src, offset);
        } finally {
            lifecycle.requests().unlock();
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>Here: runs this layer maps to data in its storage go to a {@link LayeredImage} target through its write
     * tickets ({@link WriteTicket#copyFrom}); the rest (zeroes, the backing chain, compressed data) is read.
     */
    @Override
    public void copyTo(long offset, long length, Image target, long targetOffset) throws IOException {
        if (!(target instanceof LayeredImage to) || to == this) {
            Image.super.copyTo(offset, length, target, targetOffset);
            return;
        }
        lifecycle.shared(() -> {
            contract.checkRange("copy", offset, length);
            for (long pos = offset; pos < offset + length; ) {
                Mapping m = contract.checked(layer.readMapping(pos, offset + length - pos), pos, offset + length - pos);
                long at = targetOffset + (pos - offset);
                if (m instanceof Mapping.Data d) {
                    to.lifecycle.writing(() -> {
                        to.contract.checkRange("write", at, d.length());
                        to.writes.copyFrom(d.storage(), d.hostOffset(), d.length(), at);
                        return null;
                    });
                } else {
                    Image.super.copyTo(pos, m.length(), target, at);
                }
                pos += m.length();
            }
            return null;
        });
    }

    @Override
    public void writeCompressed(ByteBuffer src, long offset) throws IOException {
        lifecycle.writing(() -> {
            contract.checkRange("compressed write", offset, src.remaining());
            writes.writeCompressed(src, offset);
            return null;
        });
    }

    @Override
    public PendingWrite compress(ByteBuffer src, long offset) throws IOException {
        PendingWrite pending = lifecycle.writing(() -> {
            contract.checkRange("compressed write", offset, src.remaining());
            return writes.compress(src, offset);
        });
        return () -> lifecycle.writing(() -> {
            pending.write();
            return null;
        });
    }

    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        lifecycle.writing(() -> {
            contract.checkRange("write zeroes", offset, length);
            writes.writeZeroes(offset, length, flags);
            return null;
        });
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        lifecycle.writing(() -> {
            contract.checkRange("discard", offset, length);
            writes.discard(offset, length);
            return null;
        });
    }

    @Override
    public void flush() throws IOException {
        lifecycle.shared(() -> {
            if (!readOnly) {
                layer.flush();
                layer.sync();
            }
            return null;
        });
    }

    @Override
    public void resize(long newSize, Preallocation preallocation) throws IOException {
        Objects.requireNonNull(preallocation, "preallocation");
        if (newSize < 0) {
            throw new IllegalArgumentException("Image size must be non-negative, got " + newSize);
        }
        lifecycle.exclusive(() -> {
            capabilities.resizer().resize(newSize, preallocation, below);
            return null;
        });
    }

    @Override
    public void makeEmpty() throws IOException {
        lifecycle.exclusive(() -> {
            capabilities.backingRewriter("this image cannot be emptied").makeEmpty();
            return null;
        });
    }

    @Override
    public void changeBackingFile(String storedName, String format) throws IOException {
        lifecycle.exclusive(() -> {
            capabilities.backingRewriter("this image cannot name a backing file").changeBackingFile(storedName, format);
            return null;
        });
    }

    @Override
    public SnapshotInfo createSnapshot(String name) throws IOException {
        Objects.requireNonNull(name, "name");
        return lifecycle.exclusive(() -> capabilities.snapshots().create(name));
    }

    @Override
    public void deleteSnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        lifecycle.exclusive(() -> {
            capabilities.snapshots().delete(idOrName);
            return null;
        });
    }

    /** {@inheritDoc} Excludes every other request, as the guest bytes and the size change at once. */
    @Override
    public void applySnapshot(String idOrName) throws IOException {
        Objects.requireNonNull(idOrName, "idOrName");
        lifecycle.exclusive(() -> {
            capabilities.snapshots().apply(idOrName);
            return null;
        });
    }

    @Override
    public boolean supports(Feature feature) {
        return capabilities.answers(feature) ? capabilities.offers(feature) : Image.super.supports(feature);
    }

    // ---------------------------------------------------------------- mappings

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        return lifecycle.shared(() -> extents.mapping(offset, maxLength));
    }

    @Override
    public VmState vmState() {
        return new LayerVmState(name(), format, layer, below, lifecycle::shared, lifecycle::writing);
    }

    @Override
    public Bitmaps bitmaps() {
        return new LayerBitmaps(name(), layer, readOnly(), this::size, this::dirtyRun);
    }

    @Override
    public List<String> dirtyBitmaps() {
        return layer.capability(DirtyBitmaps.class).map(DirtyBitmaps::names).orElse(List.of());
    }

    @Override
    public DirtyRun dirtyRun(String name, long offset, long maxLength) throws IOException {
        return lifecycle.shared(() -> {
            contract.checkQuery(offset, maxLength);
            DirtyBitmaps bitmaps = layer.capability(DirtyBitmaps.class).orElseThrow(() ->
                    new IllegalArgumentException("Bitmap '" + name + "' is not found"));
            return bitmaps.run(name, offset, Math.min(maxLength, size() - offset));
        });
    }

    @Override
    public Extent extent(long offset, long maxLength) throws IOException {
        return lifecycle.shared(() -> extents.extent(offset, maxLength));
    }

    @Override
    public ImageInfo info() throws IOException {
        return lifecycle.shared(capabilities::info);
    }

    @Override
    public CheckReport check(Repair repair) throws IOException {
        Objects.requireNonNull(repair, "repair");
        // a check must see metadata no request is changing, and a repair must change it alone
        return lifecycle.alone(() -> {
            if (repair != Repair.NONE && readOnly) {
                throw new ReadOnlyImageException(storage.name(), "cannot repair an image opened read-only");
            }
            return capabilities.checker().check(repair);
        });
    }

    // ---------------------------------------------------------------- close

    /** Flushes a writable layer, then closes the layer, what was opened with it, the storage and an owned backing. */
    @Override
    public void close() throws IOException {
        List<AutoCloseable> order = new ArrayList<>();
        order.add(layer);
        order.addAll(alsoClose);
        order.add(storage);
        if (ownsBacking && backing != null) {
            order.add(backing);
        }
        lifecycle.close(() -> {
            if (!readOnly) {
                layer.flush();
                layer.sync();
            }
            return null;
        }, order);
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
