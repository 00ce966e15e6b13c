package imago.vmdk.internal;

import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.BackingReader;
import imago.api.spi.Storage;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes a streamOptimized extent as QEMU does: each grain compressed (a marker, then the zlib stream, padded to
 * whole sectors) and appended at the end of the file, its grain table entry set; tables are written by the extent's
 * flush. The extent only appends: a grain that was written, or lies behind the last one appended, is refused
 * ({@link imago.api.Feature#RANDOM_WRITES}).
 *
 * <p>Grains are compressed in the callers' threads, at once; so that they reach the file in guest order however
 * the compressions finish, up to {@link #WINDOW} of them wait here, and the lowest is appended when more arrive (all
 * of them at a flush, or before a read maps them). A writer that hands out grains in order to fewer than
 * {@link #WINDOW} threads at a time ({@code convert}) thus gets them appended in order.
 */
final class VmdkStreamWriter {
    /** Compressed grains held for ordering, at most. */
    static final int WINDOW = 64;

    /** Makes the writer of an extent. */
    @FunctionalInterface
    interface Factory {
        VmdkStreamWriter create(Target extent);
    }

    /**
     * What the writer needs of the compressed sparse extent it appends to, which implements it (so that the
     * extent, which holds its writer, and the writer do not depend on each other).
     */
    interface Target {
        /** The extent's file. */
        Storage storage();

        /** The layout the extent follows. */
        VmdkSparseLayout layout();

        /** Its grain directory and tables. */
        VmdkGrainTables tables();

        /** Its size in bytes. */
        long size();

        /**
         * Whether grain {@code grain} has no entry yet.
         *
         * @throws IOException if the entry is damaged (as a read of the grain finds it)
         */
        boolean unallocated(long grain) throws IOException;

        /**
         * Takes {@code bytes} (whole sectors) at the end of the file for a compressed grain; returns the first sector.
         *
         * @throws IOException if the file cannot grow that far
         */
        long reserveCompressed(long bytes) throws IOException;

        /** The refusal of a write at guest offset {@code guest} that an append-only extent cannot take. */
        UnsupportedFeatureException notAppendOnly(long guest, String why);
    }

    private final Target extent;
    private final int grainBytes;
    private final ReentrantLock lock = new ReentrantLock();
    /** Compressed grains not yet appended, by grain: each a marker and its data, padded to whole sectors. */
    private final TreeMap<Long, ByteBuffer> pending = new TreeMap<>();
    /** Grains being compressed. */
    private final Set<Long> compressing = new HashSet<>();
    /** The first grain that may still be written; -1 until known (the grain after the last one in the file). */
    private long mark = -1;
    /** Where the file ends once flushed: a whole grain from the last compressed grain's start, as QEMU leaves it. */
    private long end = -1;

    VmdkStreamWriter(Target extent) {
        this.extent = extent;
        this.grainBytes = extent.layout().grainBytes();
    }

    /**
     * Compresses one grain ({@code data} holds it whole, or up to the extent's end for the last one) at extent
     * offset {@code offset} (grain aligned) and holds it for appending.
     *
     * @param base where the extent starts in guest bytes (the marker records the guest sector)
     * @throws imago.api.UnsupportedFeatureException if the grain was written already, is being written, or lies
     *         behind the last grain appended
     */
    void writeCompressed(long base, ByteBuffer data, long offset) throws IOException {
        long grain = offset / grainBytes;
        lock.lock();
        try {
            checkAppendable(base, offset);
            compressing.add(grain);
        } finally {
            lock.unlock();
        }
        ByteBuffer block;
        try {
            block = compress(data, (base + offset) / VmdkDescriptor.SECTOR);
        } catch (RuntimeException | Error e) {
            lock.lock();
            try {
                compressing.remove(grain);
            } finally {
                lock.unlock();
            }
            throw e;
        }
        lock.lock();
        try {
            compressing.remove(grain);
            pending.put(grain, block);
            while (pending.size() > WINDOW) {
                appendFirst();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * The marker ({@code lba}, size) and the zlib stream of {@code data}, zero-padded to whole sectors: compressed
     * into a pooled buffer, then copied into one of its exact size, which waits for appending.
     */
    private ByteBuffer compress(ByteBuffer data, long lba) {
        ByteBuffer scratch = SCRATCH.poll();
        if (scratch == null || scratch.capacity() < 2 * grainBytes) {
            scratch = ByteBuffer.allocate(2 * grainBytes);
        }
        try {
            int n = VmdkDeflate.compress(data, scratch.clear());
            if (n <= 0) {
                throw new IllegalStateException("a grain of " + data.remaining() + " bytes did not compress into "
                        + 2 * grainBytes);
            }
            int used = VmdkCompressedGrains.MARKER + n;
            int padded = (used + VmdkDescriptor.SECTOR - 1) / VmdkDescriptor.SECTOR * VmdkDescriptor.SECTOR;
            ByteBuffer out = ByteBuffer.allocate(padded).order(ByteOrder.LITTLE_ENDIAN);
            out.putLong(0, lba).putInt(8, n).put(VmdkCompressedGrains.MARKER, scratch, 0, n);
            return out;
        } finally {
            if (SCRATCH.size() < MAX_SCRATCH) {
                SCRATCH.add(scratch);
            }
        }
    }

    /** Compression buffers kept between grains (writers may run on short-lived virtual threads). */
    private static final ConcurrentLinkedQueue<ByteBuffer> SCRATCH = new ConcurrentLinkedQueue<>();
    private static final int MAX_SCRATCH = 4 * Runtime.getRuntime().availableProcessors() + 8;

    /** Refuses a grain that is not free to append (the caller holds the lock). */
    private void checkAppendable(long base, long offset) throws IOException {
        long grain = offset / grainBytes;
        if (mark < 0) {
            mark = firstFreeGrain();
        }
        if (offset % grainBytes != 0) {
            throw extent.notAppendOnly(base + offset, "a streamOptimized extent takes whole grains");
        }
        if (pending.containsKey(grain) || compressing.contains(grain)
                || !extent.unallocated(grain)) {
            throw extent.notAppendOnly(base + offset, "Could not write to allocated cluster for streamOptimized");
        }
        if (grain < mark) {
            throw extent.notAppendOnly(base + offset, "the stream has already been written up to guest offset "
                    + (base + mark * grainBytes) + ", and it only appends");
        }
    }

    /** The grain after the last one the file holds (0 for none). */
    private long firstFreeGrain() throws IOException {
        VmdkGrainTables tables = extent.tables();
        long grains = (extent.size() + grainBytes - 1) / grainBytes;
        for (int t = tables.tableCount() - 1; t >= 0; t--) {
            if (!tables.hasTable(t)) {
                continue;
            }
            long first = (long) t * tables.gtesPerGt();
            for (long g = Math.min(grains, first + tables.gtesPerGt()) - 1; g >= first; g--) {
                if (tables.entry(g) != 0) {
                    return g + 1;
                }
            }
        }
        return 0;
    }

    /** Appends the lowest held grain (the caller holds the lock). */
    private void appendFirst() throws IOException {
        Map.Entry<Long, ByteBuffer> e = pending.firstEntry();
        ByteBuffer block = e.getValue();
        long sector = extent.reserveCompressed(block.remaining());
        extent.storage().write(block, sector * VmdkDescriptor.SECTOR);
        pending.pollFirstEntry();
        extent.tables().set(e.getKey(), (int) sector);
        mark = Math.max(mark, e.getKey() + 1);
        // QEMU fills a whole grain with zeroes before it writes a compressed one over its start
        end = Math.max(end, sector * VmdkDescriptor.SECTOR + grainBytes);
    }

    /** Appends every held grain, in order. */
    void drain() throws IOException {
        lock.lock();
        try {
            while (!pending.isEmpty()) {
                appendFirst();
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * A plain write of whole grains: the ticket compresses what it is given instead of writing it as it is.
     *
     * @throws imago.api.UnsupportedFeatureException for a partial grain or one that is not free to append
     */
    WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws IOException {
        long n = Math.min(grainBytes, extent.size() - offset);
        if (length < n) {
            throw extent.notAppendOnly(base + offset, "a streamOptimized extent takes whole grains");
        }
        lock.lock();
        try {
            checkAppendable(base, offset);
        } finally {
            lock.unlock();
        }
        Mapping.Data nominal = new Mapping.Data(base + offset, n, extent.storage(), 0);
        return new WriteTicket() {
            @Override
            public Mapping.Data mapping() {
                return nominal;
            }

            @Override
            public void write(ByteBuffer src) throws IOException {
                writeCompressed(base, src, offset);
            }

            @Override
            public void commit() {
            }

            @Override
            public void close() {
            }
        };
    }

    /** Whole unwritten grains at or after the last one appended become zeroed-grain entries. */
    long ensureZero(long offset, long length) throws IOException {
        long grains = length / grainBytes;
        long grain = offset / grainBytes;
        lock.lock();
        try {
            if (mark < 0) {
                mark = firstFreeGrain();
            }
            long done = 0;
            while (done < grains && grain + done >= mark && !pending.containsKey(grain + done)
                    && !compressing.contains(grain + done)
                    && extent.unallocated(grain + done)) {
                extent.tables().set(grain + done, 1);
                done++;
            }
            return done * grainBytes;
        } finally {
            lock.unlock();
        }
    }

    /** Appends what is held and ends the file a grain after the last grain's start; the extent writes the tables. */
    void flush() throws IOException {
        lock.lock();
        try {
            drain();
            if (end > extent.storage().size()) {
                extent.storage().resize(end, Preallocation.OFF);
            }
        } finally {
            lock.unlock();
        }
    }
}
