package imago.testkit;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A storage handle that checks how a format driver uses it (Lucene's asserting codecs, for storage): no request
 * after {@link #close()}; no write, zero write, discard or resize through a read-only handle; offsets and lengths
 * non-negative, without overflow and below {@code limit}; aligned as the storage asks; and no two writes in flight
 * over the same bytes at once (the {@link Storage} contract is thread-safe for disjoint ranges only).
 *
 * <p>A broken rule throws an {@link AssertionError} from the call and is also remembered, so that a driver that
 * swallows it is still caught: {@link #violations()}.
 */
public final class AssertingStorage implements Storage {
    private final Storage delegate;
    private final boolean readOnly;
    private final long limit;
    private final List<String> violations = new ArrayList<>();
    /** Byte ranges of the writes in flight, as {start, end} pairs. */
    private final List<long[]> inFlight = new ArrayList<>();
    private volatile boolean closed;

    /**
     * A handle on {@code delegate}.
     *
     * @param readOnly whether this handle was opened read-only (whatever {@code delegate} allows)
     * @param limit no request may reach this offset
     */
    public AssertingStorage(Storage delegate, boolean readOnly, long limit) {
        this.delegate = delegate;
        this.readOnly = readOnly;
        this.limit = limit;
    }

    /** What the driver did wrong through this handle, in order. */
    public synchronized List<String> violations() {
        return List.copyOf(violations);
    }

    /** Whether {@link #close()} was called. */
    public boolean closed() {
        return closed;
    }

    private synchronized void violation(String what) {
        String message = delegate.name() + ": " + what;
        violations.add(message);
        throw new AssertionError(message);
    }

    private void open(String request) {
        if (closed) {
            violation(request + " after close");
        }
    }

    private void range(String request, long offset, long length) {
        open(request);
        if (offset < 0 || length < 0 || offset > limit - length) {
            violation(request + " of " + length + " bytes at " + offset + " is outside [0, " + limit + ")");
        }
        int align = delegate.requestAlignment();
        if (align > 1 && ((offset | length) & (align - 1)) != 0) {
            violation(request + " of " + length + " bytes at " + offset + " is not aligned to " + align);
        }
    }

    /** A request that changes the storage. */
    @FunctionalInterface
    private interface Change {
        void run() throws IOException;
    }

    /** Checks a changing request, runs it, and keeps its range in flight meanwhile. */
    private void writing(String request, long offset, long length, Change change) throws IOException {
        range(request, offset, length);
        if (readOnly) {
            violation(request + " of " + length + " bytes at " + offset + " through a read-only handle");
        }
        long[] mine = {offset, offset + length};
        synchronized (this) {
            for (long[] other : inFlight) {
                if (length > 0 && other[0] < mine[1] && mine[0] < other[1]) {
                    violation(request + " of [" + mine[0] + ", " + mine[1] + ") overlaps a write in flight of ["
                            + other[0] + ", " + other[1] + ")");
                }
            }
            inFlight.add(mine);
        }
        try {
            change.run();
        } finally {
            synchronized (this) {
                inFlight.remove(mine);
            }
        }
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public StorageLocation location() {
        return delegate.location();
    }

    @Override
    public long size() throws IOException {
        open("size");
        return delegate.size();
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        range("read", offset, dst.remaining());
        delegate.read(dst, offset);
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        writing("write", offset, src.remaining(), () -> delegate.write(src, offset));
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        writing("writeZeroes", offset, length, () -> delegate.writeZeroes(offset, length, mayUnmap));
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        writing("discard", offset, length, () -> delegate.discard(offset, length));
    }

    @Override
    public void flush() throws IOException {
        open("flush");
        delegate.flush();
    }

    @Override
    public void sync() throws IOException {
        open("sync");
        delegate.sync();
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        if (size > limit) {
            violation("resize to " + size + " bytes, past " + limit);
        }
        writing("resize", size, 0, () -> delegate.resize(size, preallocation));
    }

    @Override
    public int requestAlignment() {
        return delegate.requestAlignment();
    }

    @Override
    public int memoryAlignment() {
        return delegate.memoryAlignment();
    }

    @Override
    public Optional<StorageLocation> resolve(String storedName) {
        open("resolve");
        return delegate.resolve(storedName);
    }

    @Override
    public StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        open("dataExtent");
        if (offset < 0 || maxLength < 0) {
            violation("dataExtent of " + maxLength + " bytes at " + offset);
        }
        return delegate.dataExtent(offset, maxLength);
    }

    @Override
    public Optional<Instant> lastModified() throws IOException {
        open("lastModified");
        return delegate.lastModified();
    }

    @Override
    public OptionalLong allocatedSize() throws IOException {
        open("allocatedSize");
        return delegate.allocatedSize();
    }

    /** Closes this handle (a second close is allowed and does nothing) and the delegate. */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        delegate.close();
    }

    @Override
    public String toString() {
        return "AssertingStorage[" + delegate + (readOnly ? ", read-only" : "") + (closed ? ", closed" : "") + "]";
    }
}
