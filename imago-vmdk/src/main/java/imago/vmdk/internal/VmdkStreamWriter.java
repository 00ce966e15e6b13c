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
 * Writes a streamOptimized extent as QEMU's vmdk driver does: each grain compressed (a marker, then the zlib stream,
 * padded to whole sectors) and appended at the end of the file, in any guest order, its grain table entry set;
 * tables are written by the extent's flush. Each grain is written once and whole (or up to the extent's end): a grain
 * already written, or part of one, is refused ({@link imago.api.Feature#OVERWRITES}); like QEMU, a part of a free
 * grain still takes a whole grain's place at the end of the file before it is refused.
 *
 * <p>Grains are compressed in the callers' threads, at once; up to {@link #WINDOW} of them wait here and the lowest
 * is appended when more arrive (all of them at a flush, or before a read maps them), so that grains compressed in
 * parallel by different threads ({@code convert}, whose workers are handed grains in order) reach the file in guest
 * order however the compressions finish. One thread's grains reach the file in the order it wrote them: a grain below
 * one the same thread wrote and that still waits first puts every waiting grain in the file. A single writer thus
 * leaves the file QEMU leaves for the same writes, in the same order.
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
         * Whether grain {@code grain} holds no data yet (no entry, or a zeroed-grain one).
         *
         * @throws IOException if the entry is damaged (as a read of the grain finds it)
         */
        boolean writable(long grain) throws IOException;

        /**
         * Takes {@code bytes} (whole sectors) at the end of the file for a compressed grain; returns the first sector.
         *
         * @throws IOException if the file cannot grow that far
         */
        long reserveCompressed(long bytes) throws IOException;

        /** The refusal of a write at guest offset {@code guest} that a write-once extent cannot take. */
        UnsupportedFeatureException refused(long guest, String why);
    }

    /** QEMU's words for a write to a grain already written. */
    static final String ALLOCATED = "Could not write to allocated cluster for streamOptimized";

    /** A compressed grain waiting to be appended, and the thread that wrote it. */
    private record Held(ByteBuffer block, long thread) {
    }

    private final Target extent;
    private final int grainBytes;
    private final ReentrantLock lock = new ReentrantLock();
    /** Compressed grains not yet appended, by grain: each a marker and its data, padded to whole sectors. */
    private final TreeMap<Long, Held> pending = new TreeMap<>();
    /** Grains being compressed. */
    private final Set<Long> compressing = new HashSet<>();
    /** Where the file ends once flushed: a whole grain from the last grain's start, as QEMU leaves it. */
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
     * @throws imago.api.UnsupportedFeatureException if the grain was written already or is being written
     */
    void writeCompressed(long base, ByteBuffer data, long offset) throws IOException {
        long grain = offset / grainBytes;
        lock.lock();
        try {
            checkWritable(base, offset);
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
        long thread = Thread.currentThread().threadId();
        lock.lock();
        try {
            compressing.remove(grain);
            // this thread wrote a higher grain before this one: it reaches the file first, as in QEMU
            if (pending.tailMap(grain, false).values().stream().anyMatch(h -> h.thread() == thread)) {
                drain();
            }
            pending.put(grain, new Held(block, thread));
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

    /** Refuses a grain that was written or is being written, or is not whole (the caller holds the lock). */
    private void checkWritable(long base, long offset) throws IOException {
        long grain = offset / grainBytes;
        if (pending.containsKey(grain) || compressing.contains(grain) || !extent.writable(grain)) {
            throw extent.refused(base + offset, ALLOCATED);
        }
        if (offset % grainBytes != 0) {
            throw refusePart(base, offset);
        }
    }

    /**
     * The refusal of a write to part of free grain at extent offset {@code offset}: QEMU has already taken a whole
     * grain at the end of the file for it (and filled it with zeroes) when it finds that the write is not whole, so
     * this does too, and the next grain goes after it (the caller holds the lock).
     */
    private UnsupportedFeatureException refusePart(long base, long offset) throws IOException {
        drain();
        long sector = extent.reserveCompressed(grainBytes);
        end = Math.max(end, sector * VmdkDescriptor.SECTOR + grainBytes);
        return extent.refused(base + offset, "a streamOptimized extent takes whole grains");
    }

    /** Appends the lowest held grain (the caller holds the lock). */
    private void appendFirst() throws IOException {
        Map.Entry<Long, Held> e = pending.firstEntry();
        ByteBuffer block = e.getValue().block();
        long sector = extent.reserveCompressed(block.remaining());
        extent.storage().write(block, sector * VmdkDescriptor.SECTOR);
        pending.pollFirstEntry();
        extent.tables().set(e.getKey(), (int) sector);
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
     * A plain write of a whole grain: the ticket compresses what it is given instead of writing it as it is.
     *
     * @throws imago.api.UnsupportedFeatureException for a grain written already, or a part of one
     */
    WriteTicket beginWrite(long base, long offset, long length, BackingReader below) throws IOException {
        long n = Math.min(grainBytes - offset % grainBytes, extent.size() - offset);
        lock.lock();
        try {
            checkWritable(base, offset);
            if (length < n) {
                throw refusePart(base, offset);
            }
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

    /** Whole grains that hold no data yet become zeroed-grain entries. */
    long ensureZero(long offset, long length) throws IOException {
        long grains = length / grainBytes;
        long grain = offset / grainBytes;
        lock.lock();
        try {
            long done = 0;
            while (done < grains && !pending.containsKey(grain + done) && !compressing.contains(grain + done)
                    && extent.writable(grain + done)) {
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
