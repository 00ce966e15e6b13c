package imago.api.spi;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A byte-array storage for this module's tests (imago.api cannot depend on the memory storage module).
 * It can demand aligned requests, as an O_DIRECT file does, and fail the next write on request.
 */
class ArrayStorage implements Storage {
    private byte[] data;
    private final int align;
    final AtomicInteger failNextWrites = new AtomicInteger();

    ArrayStorage(int size, int align) {
        this.data = new byte[size];
        this.align = align;
    }

    private void checkAligned(long offset, int length, ByteBuffer buf) {
        if (align > 1) {
            if (offset % align != 0 || length % align != 0 || !buf.isDirect()
                    || java.lang.foreign.MemorySegment.ofBuffer(buf).address() % align != 0) {
                throw new AssertionError("unaligned request: offset " + offset + ", length " + length);
            }
        }
    }

    byte[] bytes() {
        return data;
    }

    @Override
    public String name() {
        return "array";
    }

    @Override
    public StorageLocation location() {
        return StorageLocation.memory("array");
    }

    @Override
    public synchronized long size() {
        return data.length;
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public synchronized void read(ByteBuffer dst, long offset) {
        checkAligned(offset, dst.remaining(), dst);
        while (dst.hasRemaining()) {
            dst.put(offset < data.length ? data[(int) offset] : 0);
            offset++;
        }
    }

    @Override
    public synchronized void write(ByteBuffer src, long offset) throws IOException {
        checkAligned(offset, src.remaining(), src);
        if (failNextWrites.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            throw new IOException("injected write failure");
        }
        long end = offset + src.remaining();
        if (end > data.length) {
            data = Arrays.copyOf(data, (int) end);
        }
        src.get(data, (int) offset, src.remaining());
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
    }

    @Override
    public synchronized void resize(long size, Preallocation preallocation) {
        data = Arrays.copyOf(data, (int) size);
    }

    @Override
    public int requestAlignment() {
        return align;
    }

    @Override
    public int memoryAlignment() {
        return align;
    }

    @Override
    public void close() {
    }
}
