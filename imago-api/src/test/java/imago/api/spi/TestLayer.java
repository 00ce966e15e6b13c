package imago.api.spi;

import imago.api.Mapping;
import imago.api.ReadOnlyImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A layer with 512-byte units in four states: unallocated (falls to backing), zero, data stored at the
 * same offset in the storage, and "special" units that decode to their unit number. Writes allocate
 * units, copying what lies below into the parts they do not cover; tickets closed without a commit are counted.
 */
class TestLayer implements FormatInstance {
    static final int UNIT = 512;

    enum State { UNALLOCATED, ZERO, DATA, SPECIAL }

    final ConcurrentHashMap<Long, State> states = new ConcurrentHashMap<>();
    final Storage storage;
    final boolean writable;
    volatile long size;
    final java.util.concurrent.atomic.AtomicInteger abortedWrites = new java.util.concurrent.atomic.AtomicInteger();
    final java.util.concurrent.atomic.AtomicInteger committedWrites = new java.util.concurrent.atomic.AtomicInteger();
    volatile boolean zeroFlags = true;

    TestLayer(Storage storage, long size, boolean writable) {
        this.storage = storage;
        this.size = size;
        this.writable = writable;
    }

    State state(long unit) {
        return states.getOrDefault(unit, State.UNALLOCATED);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Mapping mapping(long offset, long maxLength) {
        if (offset >= size) {
            return new Mapping.EndOfImage(offset);
        }
        State s = state(offset / UNIT);
        long len = UNIT - offset % UNIT;
        // merge following units in the same state
        while (offset + len < size && len < maxLength && state((offset + len) / UNIT) == s) {
            len += UNIT;
        }
        len = Math.min(Math.min(len, maxLength), size - offset);
        return switch (s) {
            case UNALLOCATED -> new Mapping.Unallocated(offset, len);
            case ZERO -> Mapping.Zero.unreserved(offset, len);
            case DATA -> new Mapping.Data(offset, len, storage, offset);
            case SPECIAL -> new Mapping.Special(offset, len, "test");
        };
    }

    @Override
    public WriteTicket beginWrite(long offset, long length, BackingReader below) throws IOException {
        if (!writable) {
            throw new ReadOnlyImageException(storage.name(), "read-only");
        }
        long unit = offset / UNIT;
        long unitStart = unit * UNIT;
        if (state(unit) != State.DATA) {
            ByteBuffer copy = ByteBuffer.allocate(UNIT);
            switch (state(unit)) {
                case UNALLOCATED -> below.read(copy, unitStart);
                case SPECIAL -> readSpecial(null, copy, unitStart);
                default -> { }
            }
            storage.write(copy.clear(), unitStart);
            states.put(unit, State.DATA);
        }
        Mapping.Data d = new Mapping.Data(offset, Math.min(length, unitStart + UNIT - offset), storage, offset);
        return new WriteTicket() {
            private boolean committed;

            @Override
            public Mapping.Data mapping() {
                return d;
            }

            @Override
            public void commit() {
                committed = true;
                committedWrites.incrementAndGet();
            }

            @Override
            public void close() {
                if (!committed) {
                    abortedWrites.incrementAndGet();
                }
            }
        };
    }

    @Override
    public long ensureZeroMapping(long offset, long length, boolean mayUnmap) {
        if (!zeroFlags || offset % UNIT != 0 || length < UNIT) {
            return 0;
        }
        long n = length / UNIT * UNIT;
        for (long u = offset / UNIT; u < (offset + n) / UNIT; u++) {
            states.put(u, State.ZERO);
        }
        return n;
    }

    @Override
    public void readSpecial(Mapping.Special mapping, ByteBuffer dst, long offset) {
        while (dst.hasRemaining()) {
            dst.put((byte) (offset / UNIT));
            offset++;
        }
    }

    /** The {@link Resizer} capability. */
    final Resizer resizer = (newSize, preallocation, below) -> size = newSize;

    @Override
    public <C extends Capability> java.util.Optional<C> capability(Class<C> type) {
        return type == Resizer.class ? java.util.Optional.of(type.cast(resizer)) : FormatInstance.super.capability(type);
    }

    @Override
    public java.util.OptionalInt clusterSize() {
        return java.util.OptionalInt.of(UNIT);
    }

    @Override
    public void flush() {
    }

    @Override
    public void sync() {
    }

    @Override
    public void close() {
    }
}
