package imago.vpc.internal;

import imago.api.CorruptImageException;
import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import imago.api.ZeroFlag;
import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.util.Set;

/**
 * One open fixed VHD: guest byte {@code n} is file byte {@code n}, and the footer follows the data. As QEMU does,
 * reads go to the file at the guest offset whatever the size the footer gives (bytes past the file's end read as
 * zero), and {@code qemu-img map} shows the file's holes as zero data ({@link #mapsStorageHoles()}). Writes are
 * refused past the data area, so that the footer is never overwritten.
 */
final class VpcFixedInstance implements FormatInstance {
    private final Storage storage;
    private final long size;
    private final long dataArea;
    private final boolean writable;

    /**
     * @param dataArea the file's length less the footer
     * @throws CorruptImageException if writable and the virtual size reaches into the footer
     */
    VpcFixedInstance(Storage storage, long size, long dataArea, boolean writable) throws CorruptImageException {
        if (writable && size > dataArea) {
            throw new CorruptImageException(storage.name(), dataArea, "the virtual size (" + size + " bytes) is larger "
                    + "than the data area of this fixed VHD (" + dataArea + " bytes): writes would overwrite its footer");
        }
        this.storage = storage;
        this.size = size;
        this.dataArea = dataArea;
        this.writable = writable;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) throws IOException {
        if (offset < 0 || maxLength < 1) {
            throw new IllegalArgumentException(storage.name() + ": bad mapping query: offset " + offset + ", length "
                    + maxLength);
        }
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        long n = Math.min(maxLength, size - offset);
        long fileSize = dataArea + VpcFields.FOOTER_LENGTH;
        if (offset >= fileSize) {
            return Mapping.Zero.unreserved(offset, n); // QEMU reads past the end of the file as zeroes
        }
        return new Mapping.Data(offset, Math.min(n, fileSize - offset), storage, offset);
    }

    @Override
    public boolean mapsStorageHoles() {
        return true;
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        ensureWritable(offset);
        if (offset < 0 || length < 1 || offset >= size) {
            throw new IllegalArgumentException(storage.name() + ": no data mapping for " + length + " bytes at offset "
                    + offset + " (size " + size + ")");
        }
        return WriteTicket.of(new Mapping.Data(offset, Math.min(length, size - offset), storage, offset));
    }

    /**
     * {@inheritDoc} VHD has no way to zero by metadata that QEMU uses (its vpc driver has no zero writes), so a
     * request that must not fall back to writing zeroes ({@link ZeroFlag#NO_FALLBACK}) is refused, as qemu-io's
     * {@code write -z -n} is refused on vpc.
     */
    @Override
    public long ensureZeroMapping(long offset, long length, Set<ZeroFlag> flags, BackingReader below)
            throws IOException {
        return flags.contains(ZeroFlag.NO_FALLBACK) ? 0
                : ensureZeroMapping(offset, length, flags.contains(ZeroFlag.MAY_UNMAP));
    }

    /** {@inheritDoc} The file zeroes the range itself (punching a hole when {@code mayUnmap} allows). */
    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) throws IOException {
        ensureWritable(offset);
        long n = Math.min(length, size - offset);
        if (n > 0) {
            storage.writeZeroes(offset, n, mayUnmap);
        }
        return Math.max(n, 0);
    }

    /** {@inheritDoc} Passes the range to the file, which punches a hole where it can. */
    @Override
    public void discard(long offset, long length) throws IOException {
        ensureWritable(offset);
        long n = Math.min(length, size - offset);
        if (n > 0) {
            storage.discard(offset, n);
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

    @Override
    public void close() {
    }

    private void ensureWritable(long offset) throws ReadOnlyImageException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), offset, "image is opened read-only");
        }
    }

    @Override
    public String toString() {
        return "vpc fixed on " + storage.name();
    }
}
