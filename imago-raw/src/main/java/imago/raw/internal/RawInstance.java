package imago.raw.internal;

import imago.api.Feature;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Resizer;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.api.spi.WriteGuard;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One open raw image: the identity mapping onto its storage, or onto a window of it (QEMU raw's {@code offset} and
 * {@code size} open options): guest byte {@code x} is storage byte {@code offset + x}.
 *
 * <p>A window with a {@code size} is fixed: the virtual size is exactly that (a multiple of 512, checked at open), no
 * request reaches past it, and resizing is refused, as QEMU's raw driver refuses it ("Cannot resize fixed-size raw
 * disks"). A window with only an {@code offset} is the rest of the storage from there, sized and grown as below.
 *
 * <p>The virtual size is the storage size rounded up to whole 512-byte sectors, as QEMU counts every
 * image: a 320-byte file is a 512-byte disk whose last 192 bytes lie past the end of the storage, read
 * as zeroes (the storage's short read) and map as a zero extent. A write there grows the storage to the
 * end of the write, as QEMU's does. The size is computed when the image is opened, cached in a volatile
 * field and changed only by {@link #resize}, because {@link #size()} is asked on every request and a
 * file storage's size is a system call. Writes through the image never go past that size, so the cache
 * stays right unless someone else resizes the storage behind the image's back (qemu caches the size
 * the same way); bytes the storage then no longer has read as zeroes.
 *
 * <p>Thread-safe: mappings are computed from the storage alone, and resizes are serialised.
 */
final class RawInstance implements FormatInstance, Resizer {
    /** QEMU's unit of image sizes (BDRV_SECTOR_SIZE). */
    static final long SECTOR = 512;

    private final Storage storage;
    private final boolean writable;
    /** Where guest byte 0 is in the storage (QEMU raw's {@code offset}). */
    private final long base;
    /** Whether the size was given ({@code size}): then it is the window's, and does not follow the storage. */
    private final boolean fixed;
    /**
     * The format was chosen by probing, so the probe module guards writes to the first sector with a
     * {@link WriteGuard}. The guard sees only data writes: zeroing or discarding there through the
     * storage would bypass it (zeroes can complete another format's header as well as data can), so
     * this layer leaves the first sector to the guarded write path.
     */
    private final boolean guardFirstSector;
    private final ReentrantLock resizeLock = new ReentrantLock();
    private volatile long size;

    RawInstance(Storage storage, boolean writable, boolean probed) throws IOException {
        this(storage, writable, probed, RawWindow.WHOLE);
    }

    /** An image on {@code window} of {@code storage}, whose bounds {@link RawWindow#of} checked. */
    RawInstance(Storage storage, boolean writable, boolean probed, RawWindow window) throws IOException {
        this.storage = Objects.requireNonNull(storage, "storage");
        this.writable = writable;
        this.guardFirstSector = probed && writable;
        this.base = window.offset();
        this.fixed = window.size().isPresent();
        this.size = fixed ? window.size().getAsLong() : sectorAligned(Math.max(0, storage.size() - base));
    }

    /**
     * {@code length} rounded up to whole {@link #SECTOR sectors}: the virtual size of a raw image whose storage
     * holds {@code length} bytes, and the size a raw image is created with.
     */
    static long sectorAligned(long length) {
        if (length < 0 || length > Long.MAX_VALUE - (SECTOR - 1)) {
            throw new IllegalArgumentException("size " + length + " cannot be rounded up to whole sectors");
        }
        return (length + SECTOR - 1) & -SECTOR;
    }

    @Override
    public long size() {
        return size;
    }

    /**
     * {@inheritDoc} Data where the storage holds data, a {@link Mapping.Zero} at the same host offset
     * where it has a hole.
     */
    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        checkQuery(offset, maxLength);
        long size = this.size;
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long length = Math.min(maxLength, size - offset);
        long host = base + offset;
        StorageExtent e = storage.dataExtent(host, length);
        if (e.offset() != host) {
            throw new IllegalStateException(storage.name() + ": storage answered " + e + " for offset " + host);
        }
        long n = Math.min(e.length(), length);
        return e.data() ? new Mapping.Data(offset, n, storage, host) : new Mapping.Zero(offset, n, storage, host);
    }

    /**
     * {@inheritDoc} Everything is read from the storage at the same offset: its holes read as zeroes,
     * so finding them (two {@code lseek} calls) would only cost time.
     */
    @Override
    public Mapping readMapping(long offset, long maxLength) throws IOException {
        checkQuery(offset, maxLength);
        long size = this.size;
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        return new Mapping.Data(offset, Math.min(maxLength, size - offset), storage, base + offset);
    }

    /** {@inheritDoc} Raw data is always writable in place: the storage bytes at the same offset. */
    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        long n = inImage(offset, length);
        if (n < 1) {
            throw new IllegalArgumentException(storage.name() + ": no data mapping for " + length + " bytes at offset "
                    + offset + " (size " + size + ")");
        }
        return WriteTicket.of(new Mapping.Data(offset, n, storage, base + offset));
    }

    /**
     * {@inheritDoc} The storage zeroes the range itself (punching a hole when {@code mayUnmap} allows);
     * in the first sector of a probed image, nothing is handled so that the write guard sees the zeroes.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        ensureWritable(offset);
        if (guardFirstSector && offset < WriteGuard.GUARDED_BYTES) {
            return 0;
        }
        long n = inImage(offset, length);
        if (n > 0) {
            storage.writeZeroes(base + offset, n, mayUnmap);
        }
        return n;
    }

    /**
     * {@inheritDoc} Passes the range to the storage, which punches a hole where it can: the range then
     * reads as zeroes, or keeps its data where the storage cannot free it. The first sector of a probed
     * image is left alone (see {@link #ensureZeroMapping}).
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        ensureWritable(offset);
        inImage(offset, length);
        long start = guardFirstSector ? Math.max(offset, WriteGuard.GUARDED_BYTES) : offset;
        long end = offset + Math.min(length, Long.MAX_VALUE - offset);
        long n = start < end ? inImage(start, end - start) : 0;
        if (n > 0) {
            storage.discard(base + start, n);
        }
    }

    @Override
    public void flush() throws IOException {
        storage.flush();
    }

    @Override
    public void sync() throws IOException {
        storage.sync();
    }

    /**
     * {@inheritDoc} Resizes the storage to exactly {@code newSize} bytes (every preallocation mode the storage
     * supports is accepted); the virtual size becomes {@code newSize} rounded up to whole sectors, as in QEMU. A
     * window's storage ends {@code newSize} bytes after the window's start.
     *
     * @throws UnsupportedFeatureException ({@link Feature#RESIZE}) if the window has a fixed size
     * @throws IllegalArgumentException if the window's start and {@code newSize} together pass 2^63 - 1 bytes
     */
    @Override
    public void resize(long newSize, Preallocation preallocation, BackingReader below) throws IOException {
        Objects.requireNonNull(preallocation, "preallocation");
        ensureWritable(-1);
        if (newSize < 0) {
            throw new IllegalArgumentException(storage.name() + ": size must be non-negative, got " + newSize);
        }
        if (preallocation == Preallocation.METADATA) {
            throw new UnsupportedFeatureException(storage.name(), Feature.PREALLOCATION, "metadata preallocation",
                    "Unsupported preallocation mode: metadata (raw has no metadata)");
        }
        if (fixed) {
            throw new UnsupportedFeatureException(storage.name(), Feature.RESIZE, "resizing a fixed-size window",
                    "Cannot resize fixed-size raw disks");
        }
        if (newSize > Long.MAX_VALUE - base) {
            throw new IllegalArgumentException("Disk size too large for the chosen offset");
        }
        long virtualSize = sectorAligned(newSize);
        resizeLock.lock();
        try {
            storage.resize(base + newSize, preallocation);
            size = virtualSize;
        } finally {
            resizeLock.unlock();
        }
    }

    /** Nothing to release: the caller closes the storage. */
    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "RawInstance[" + storage.name() + (base == 0 && !fixed ? "" : ", window at " + base) + ", size " + size
                + (writable ? "" : ", read-only") + "]";
    }

    /** How many of {@code length} bytes from {@code offset} lie inside the image (0 if none). */
    private long inImage(long offset, long length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException(storage.name() + ": bad range: offset " + offset + ", length " + length);
        }
        return Math.max(0, Math.min(length, size - offset));
    }

    private void checkQuery(long offset, long maxLength) {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(storage.name() + ": bad mapping query: offset " + offset
                    + ", length " + maxLength);
        }
    }

    private void ensureWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), offset, "image is opened read-only");
        }
    }
}
