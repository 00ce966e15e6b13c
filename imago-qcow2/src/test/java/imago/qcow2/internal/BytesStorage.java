package imago.qcow2.internal;

import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import java.nio.ByteBuffer;

/** A read-only storage over a byte array, for tests that open thousands of small mutated images. */
final class BytesStorage implements Storage {
    private final String name;
    private final byte[] bytes;

    BytesStorage(String name, byte[] bytes) {
        this.name = name;
        this.bytes = bytes;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public StorageLocation location() {
        return StorageLocation.memory(name);
    }

    @Override
    public long size() {
        return bytes.length;
    }

    @Override
    public boolean readOnly() {
        return true;
    }

    @Override
    public void read(ByteBuffer dst, long offset) {
        int n = dst.remaining();
        if (offset < bytes.length) {
            int k = (int) Math.min(n, bytes.length - offset);
            dst.put(bytes, (int) offset, k);
            n -= k;
        }
        while (n-- > 0) {
            dst.put((byte) 0);
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws ReadOnlyImageException {
        throw new ReadOnlyImageException(name, offset, "read-only");
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws ReadOnlyImageException {
        throw new ReadOnlyImageException(name, "read-only");
    }

    /** The array's length, so that qemu's metadata-preallocation guess runs on these images too. */
    @Override
    public java.util.OptionalLong allocatedSize() {
        return java.util.OptionalLong.of(bytes.length);
    }

    @Override
    public void close() {
    }
}
