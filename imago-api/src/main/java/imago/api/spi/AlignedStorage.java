package imago.api.spi;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Presents a storage that needs aligned requests (O_DIRECT) as one that takes any offset, length and
 * buffer: unaligned reads go through an aligned bounce buffer, unaligned writes read-modify-write the
 * edge blocks. An unaligned write excludes all other writes while it runs, so that its read-modify-write
 * cannot undo a concurrent write to the other bytes of the same block.
 */
public final class AlignedStorage implements Storage {
    private static final int CHUNK = 1 << 20;

    private final Storage inner;
    private final int align;
    private final int memAlign;
    private final ReadWriteLock writes = new ReentrantReadWriteLock();

    private AlignedStorage(Storage inner) {
        this.inner = inner;
        this.align = inner.requestAlignment();
        this.memAlign = Math.max(inner.memoryAlignment(), 1);
    }

    /** {@code storage} itself when it needs no alignment, else a wrapper that provides it. */
    public static Storage wrap(Storage storage) {
        if (storage instanceof AlignedStorage || storage.requestAlignment() <= 1 && storage.memoryAlignment() <= 1) {
            return storage;
        }
        int a = storage.requestAlignment();
        int m = storage.memoryAlignment();
        if (Integer.bitCount(Math.max(a, 1)) != 1 || Integer.bitCount(Math.max(m, 1)) != 1) {
            throw new IllegalArgumentException(storage.name() + ": alignment must be a power of two");
        }
        return new AlignedStorage(storage);
    }

    private boolean aligned(long offset, int length, ByteBuffer buf) {
        return (offset & (align - 1)) == 0 && (length & (align - 1)) == 0 && buf.isDirect()
                && (MemorySegment.ofBuffer(buf).address() & (memAlign - 1)) == 0;
    }

    private ByteBuffer bounce(int length) {
        return ByteBuffer.allocateDirect(length + memAlign).alignedSlice(memAlign).limit(length);
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        if (aligned(offset, dst.remaining(), dst)) {
            inner.read(dst, offset);
            return;
        }
        long pos = offset;
        while (dst.hasRemaining()) {
            long start = pos & -align;
            int lead = (int) (pos - start);
            int n = Math.min(dst.remaining(), CHUNK - lead);
            int span = (int) (((long) lead + n + align - 1) & -align);
            ByteBuffer b = bounce(span);
            inner.read(b, start);
            dst.put(b.slice(lead, n));
            pos += n;
        }
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        if (aligned(offset, src.remaining(), src)) {
            writes.readLock().lock();
            try {
                inner.write(src, offset);
            } finally {
                writes.readLock().unlock();
            }
            return;
        }
        writes.writeLock().lock();
        try {
            long pos = offset;
            while (src.hasRemaining()) {
                long start = pos & -align;
                int lead = (int) (pos - start);
                int n = Math.min(src.remaining(), CHUNK - lead);
                int span = (int) (((long) lead + n + align - 1) & -align);
                ByteBuffer b = bounce(span);
                if (lead != 0 || n != span) {
                    inner.read(b, start); // the edge blocks keep their other bytes
                    b.clear().limit(span);
                }
                b.put(lead, src, src.position(), n);
                inner.write(b, start);
                src.position(src.position() + n);
                pos += n;
            }
        } finally {
            writes.writeLock().unlock();
        }
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        if ((offset & (align - 1)) == 0 && (length & (align - 1)) == 0) {
            inner.writeZeroes(offset, length, mayUnmap);
        } else {
            ZeroBuffers.write(this, offset, length);
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        long start = (offset + align - 1) & -align;
        long end = (offset + length) & -align;
        if (end > start) {
            inner.discard(start, end - start);
        }
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
    public void flush() throws IOException {
        inner.flush();
    }

    @Override
    public void sync() throws IOException {
        inner.sync();
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        inner.resize(size, preallocation);
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
    public Optional<java.time.Instant> lastModified() throws IOException {
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
