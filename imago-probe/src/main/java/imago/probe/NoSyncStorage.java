package imago.probe;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A storage whose {@link #sync()} does nothing, for {@link Opener#noSync(boolean)}: QEMU's
 * {@code cache.no-flush=on}, the {@code unsafe} cache mode. Everything else, {@link #flush()} included
 * (which hands buffered writes to the operating system), goes to the wrapped storage, so the file is
 * complete once the image is closed; only the write-back to stable media is left to the kernel.
 */
final class NoSyncStorage implements Storage {
    private final Storage inner;

    NoSyncStorage(Storage inner) {
        this.inner = inner;
    }

    @Override
    public void sync() {
        // the point of this class: no fdatasync
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public StorageLocation location() {
        return inner.location();
    }

    @Override
    public long size() throws IOException {
        return inner.size();
    }

    @Override
    public boolean readOnly() {
        return inner.readOnly();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        inner.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        inner.write(src, offset);
    }

    @Override
    public void copyFrom(Storage source, long sourceOffset, long length, long offset) throws IOException {
        inner.copyFrom(source, sourceOffset, length, offset);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        inner.writeZeroes(offset, length, mayUnmap);
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        inner.discard(offset, length);
    }

    @Override
    public void flush() throws IOException {
        inner.flush();
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        inner.resize(size, preallocation);
    }

    @Override
    public int requestAlignment() {
        return inner.requestAlignment();
    }

    @Override
    public int memoryAlignment() {
        return inner.memoryAlignment();
    }

    @Override
    public Optional<StorageLocation> resolve(String storedName) {
        return inner.resolve(storedName);
    }

    @Override
    public StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        return inner.dataExtent(offset, maxLength);
    }

    @Override
    public Optional<Instant> lastModified() throws IOException {
        return inner.lastModified();
    }

    @Override
    public OptionalLong allocatedSize() throws IOException {
        return inner.allocatedSize();
    }

    @Override
    public void close() throws IOException {
        inner.close();
    }
}
