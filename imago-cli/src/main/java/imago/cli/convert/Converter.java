package imago.cli.convert;

import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongConsumer;

/**
 * Copies the guest contents of one image into a new, zero-initialised one, as {@code qemu-img convert}
 * does: ranges the source's chain reports as zero or unallocated are skipped, data is read in large
 * chunks, and blocks of {@code minSparse} bytes that read as zero are not written, so that the target
 * stays sparse. A few threads copy disjoint chunks at once: each reads a chunk and records the writes it makes
 * ({@link ChunkWrites}); unless told otherwise (qemu-img's {@code -W}), they are made only after those of the chunks
 * before it, as qemu-img convert writes in order by default, so that a new image's clusters are allocated in guest
 * order and lie where qemu-img puts them ({@link WriteOrder}). Compressed chunks ({@code -c}) are ordered the same way:
 * the thread that reads a chunk also compresses its clusters ({@link Image#compress}), so that several compress at
 * once, and the compressed clusters are stored when the chunk's turn comes; they are then packed into the file in
 * guest order, and the output does not depend on timing or on the number of threads, as qemu-img's (which compresses
 * one cluster after another when it writes in order). With {@code -W} they are stored as each chunk is compressed.
 */
public final class Converter {
    /** Bytes copied per task: large enough for sequential I/O, small enough to keep a few in flight. */
    public static final int CHUNK = 2 << 20;
    /** Clusters in flight at most for a write-once target (it keeps a larger window to put them in order). */
    public static final int MAX_IN_ORDER = 32;
    /** Chunks that compressing threads may have read beyond those in flight, waiting for their turn to be stored. */
    private static final int COMPRESS_AHEAD = 8;
    /** qemu-img's default {@code -S}: 4 KiB. */
    public static final int DEFAULT_MIN_SPARSE = 4096;

    private final Source source;
    private final Image target;
    private final int minSparse;
    private final int threads;
    private final LongConsumer progress;
    private final CopyOptions options;
    /** The target's cluster size when writing compressed clusters, else 0. */
    private final int compressCluster;

    /**
     * @param source what to copy
     * @param target a freshly created image at least as large as {@code source}, reading as zeroes
     * @param minSparse zero blocks of this size (a multiple of 512, at most {@link #CHUNK}) are skipped;
     *        0 writes everything, zeroes included, so that the target is fully allocated
     * @param threads how many chunks to copy at once (at least 1)
     * @param progress told how many more guest bytes are done, from any thread
     */
    public Converter(Image source, Image target, int minSparse, int threads, LongConsumer progress) {
        this(Source.of(source), target, CopyOptions.of(minSparse, threads), progress, 0);
    }

    /**
     * A converter as {@code options} say: into a target that may not read as zeroes, only the source's top layer,
     * rate limited, salvaging read errors (qemu-img convert's {@code -n}, {@code -B}, {@code -r}, {@code --salvage}).
     *
     * @param source what to copy
     * @param target an image at least as large as the source
     * @param options how to copy
     * @param progress told how many more guest bytes are done, from any thread
     */
    public Converter(Source source, Image target, CopyOptions options, LongConsumer progress) {
        this(source, target, options, progress, 0);
    }

    /**
     * A converter whose chunks are written as they are read when {@code outOfOrder} (qemu-img convert's
     * {@code -W}), else in guest order.
     *
     * @see #Converter(Image, Image, int, int, LongConsumer)
     */
    public Converter(Image source, Image target, int minSparse, int threads, LongConsumer progress,
            boolean outOfOrder) {
        this(Source.of(source), target, CopyOptions.of(minSparse, threads).inOrder(!outOfOrder), progress, 0);
    }

    /**
     * A converter that writes every cluster compressed ({@code qemu-img convert -c}): clusters that read
     * as zero are skipped (unless {@code minSparse} is 0), the others are compressed by the thread that reads them
     * ({@link Image#compress}) and stored in guest order; so {@code threads} should be about the number of cores.
     *
     * @param clusterSize the target's cluster size: a power of two dividing {@link #CHUNK}
     * @see #Converter(Image, Image, int, int, LongConsumer)
     */
    public static Converter compressing(Image source, Image target, int minSparse, int threads, LongConsumer progress,
            int clusterSize) {
        return compressing(Source.of(source), target, CopyOptions.of(minSparse, threads), progress, clusterSize);
    }

    /**
     * A converter that writes every cluster compressed, as {@code options} say: in guest order unless
     * {@link CopyOptions#inOrder} is off.
     *
     * @see #compressing(Image, Image, int, int, LongConsumer, int)
     */
    public static Converter compressing(Source source, Image target, CopyOptions options, LongConsumer progress,
            int clusterSize) {
        if (clusterSize < 512 || Integer.bitCount(clusterSize) != 1 || CHUNK % clusterSize != 0) {
            throw new IllegalArgumentException("bad cluster size " + clusterSize);
        }
        return new Converter(source, target, options, progress, clusterSize);
    }

    private Converter(Source source, Image target, CopyOptions options, LongConsumer progress, int compressCluster) {
        this.source = source;
        this.target = target;
        this.options = options;
        this.minSparse = options.minSparse();
        this.threads = options.threads();
        this.progress = progress;
        this.compressCluster = compressCluster;
    }

    /**
     * Copies everything, then flushes the target.
     *
     * @throws IOException if reading, writing or flushing fails
     */
    public void run() throws IOException {
        long size = source.size();
        if (target.size() < size) {
            throw new IllegalArgumentException("target is smaller (" + target.size() + ") than source (" + size + ")");
        }
        if (compressCluster > 0 && !target.supports(Feature.OVERWRITES)) {
            runInOrder(size);
            target.flush();
            return;
        }
        long chunks = (size + CHUNK - 1) / CHUNK;
        int n = (int) Math.min(threads, Math.max(1, chunks));
        // in order, one buffer more than threads: the thread that made the writes of others can read on at once;
        // compressing, a few more, so that threads compress on while one slow chunk holds up the writes of the others
        int buffers = !options.inOrder() ? n : compressCluster > 0 ? n + COMPRESS_AHEAD : n + 1;
        WriteOrder turns = new WriteOrder(options.inOrder(), size, buffers);
        List<Future<Void>> workers = new ArrayList<>(n);
        // platform threads: each blocks in file reads and writes, which pin a virtual thread to its carrier anyway,
        // and a cold JVM pays for the virtual threads' scheduler and continuations (~50 ms CPU of a 512 MiB copy);
        // numbered here, not by the thread builder, whose counter (a VarHandle) spins method-handle classes at run
        // time that the AOT cache does not keep
        AtomicInteger ids = new AtomicInteger();
        ThreadFactory copiers = task -> new Thread(task, "imago-copy-".concat(Integer.toString(ids.getAndIncrement())));
        try (ExecutorService pool = Executors.newThreadPerTaskExecutor(copiers)) {
            for (int i = 0; i < n; i++) {
                workers.add(pool.submit(() -> {
                    // ends when every chunk is handed out, or when another failed: its failure is the one reported
                    for (ChunkWrites chunk; (chunk = turns.take()) != null; ) {
                        try {
                            copyChunk(chunk);
                            turns.submit(chunk, this::make);
                        } catch (IOException | RuntimeException e) {
                            turns.fail();
                            throw e;
                        }
                    }
                    return null;
                }));
            }
            List<Throwable> failures = new ArrayList<>();
            for (Future<Void> w : workers) {
                try {
                    w.get();
                } catch (ExecutionException e) {
                    failures.add(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    turns.fail();
                    failures.add(new InterruptedIOException("interrupted"));
                }
            }
            // the read failure first in guest order, whichever thread met it first: what qemu-img convert -m 1 reports
            // (with several coroutines, qemu-img prints a line for each read in flight that fails, in the order of
            // their timing)
            failures.stream().filter(ReadFailure.class::isInstance).map(ReadFailure.class::cast)
                    .min(Comparator.comparingLong(ReadFailure::offset)).ifPresent(first -> {
                        failures.remove(first);
                        failures.addFirst(first);
                    });
            IOException failure = null;
            for (Throwable t : failures) {
                failure = Tasks.merge(failure, t);
            }
            if (failure != null) {
                throw failure;
            }
        }
        if (compressCluster > 0) {
            // as qemu-img convert -c ends: a compressed write of nothing, which rounds a qcow2 file up to a sector
            target.writeCompressed(ByteBuffer.allocate(0), 0);
        }
        target.flush();
    }

    /**
     * One sequential pass for a target that stores each cluster once (VMDK streamOptimized), as qemu-img writes it in
     * order: this thread reads the source in order and hands its clusters, in order, to workers that compress and
     * write them; a cluster is handed out only once the one {@link #MAX_IN_ORDER} places before it is written, so
     * that the target, which holds back a larger window of compressed clusters to append them in order, never has to
     * append one behind another still on its way.
     */
    private void runInOrder(long size) throws IOException {
        int workers = Math.min(threads, MAX_IN_ORDER);
        ArrayDeque<Future<Void>> window = new ArrayDeque<>();
        // chunk buffers in use, oldest first, each with the writes that still read from it; a few are reused
        ArrayDeque<Map.Entry<ByteBuffer, List<Future<Void>>>> chunks = new ArrayDeque<>();
        IOException failure = null;
        try (ExecutorService pool = Executors.newFixedThreadPool(workers, Thread.ofVirtual().factory())) {
            try {
                for (long start = 0; start < size; start += CHUNK) {
                    int length = (int) Math.min(CHUNK, size - start);
                    if (minSparse > 0) {
                        Extent e = blockStatus(start, length);
                        if (e.zero() && e.length() >= length) {
                            progress.accept(length);
                            continue;
                        }
                    }
                    ByteBuffer chunk;
                    if (chunks.size() < 3) {
                        chunk = ByteBuffer.allocateDirect(CHUNK);
                    } else {
                        Map.Entry<ByteBuffer, List<Future<Void>>> oldest = chunks.poll();
                        for (Future<Void> f : oldest.getValue()) {
                            Tasks.await(f);
                        }
                        chunk = oldest.getKey();
                    }
                    List<Future<Void>> tasks = new ArrayList<>();
                    chunks.add(Map.entry(chunk, tasks));
                    chunk.clear().limit(length);
                    read(chunk, start);
                    for (int i = 0; i < length; i += compressCluster) {
                        int n = Math.min(compressCluster, length - i);
                        if (minSparse > 0 && ZeroBlocks.isZero(chunk, i, i + n)) {
                            progress.accept(n);
                            continue;
                        }
                        if (window.size() == MAX_IN_ORDER) {
                            Tasks.await(window.poll());
                        }
                        ByteBuffer cluster = chunk.duplicate().limit(i + n).position(i);
                        long offset = start + i;
                        Future<Void> task = pool.submit(() -> {
                            throttle(n);
                            target.writeCompressed(cluster, offset);
                            progress.accept(n);
                            return null;
                        });
                        window.add(task);
                        tasks.add(task);
                    }
                }
                while (!window.isEmpty()) {
                    Tasks.await(window.poll());
                }
            } catch (IOException | RuntimeException e) {
                failure = Tasks.merge(null, e);
            }
            for (Future<Void> f : window) {
                f.cancel(false);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Reads a chunk and records its writes, which {@link #make} makes once the chunk may write. */
    private void copyChunk(ChunkWrites chunk) throws IOException {
        if (compressCluster > 0) {
            compressChunk(chunk);
            return;
        }
        long start = chunk.start();
        long end = start + chunk.length();
        BackingRuns runs = options.backingRuns();
        for (long pos = start; pos < end; ) {
            Map.Entry<Long, Long> run = runs == null ? null : runs.at(pos);
            if (run != null) {
                long n = Math.min(run.getValue(), end) - pos;
                // left to the target's backing file, unless it reads as zeroes past the source's
                if (runs.readsAsZero(run.getKey()) && !pastTargetBacking(run.getKey())) {
                    chunk.add(minSparse == 0 ? ChunkWrites.Kind.ZEROES : ChunkWrites.Kind.UNMAP, pos, n, null);
                }
                pos += n;
                continue;
            }
            Extent e = blockStatus(pos, Math.min(end, runs == null ? end : runs.nextStart(pos)) - pos);
            long n = Math.min(e.length(), end - pos);
            if (e.zero()) {
                if (minSparse == 0 && !pastTargetBacking(pos)) {
                    chunk.add(ChunkWrites.Kind.ZEROES, pos, n, null); // -S 0: allocated, as qemu-img writes zeroes then
                } else if (minSparse > 0 && !options.targetZeroed()) {
                    zeroRange(chunk, pos, n);
                }
            } else {
                copyData(chunk, pos, (int) n);
            }
            pos += n;
        }
    }

    /** Writes the clusters of a chunk (cluster aligned) compressed, skipping zero clusters as qemu-img does. */
    private void compressChunk(ChunkWrites chunk) throws IOException {
        long start = chunk.start();
        int length = chunk.length();
        ByteBuffer buffer = chunk.buffer();
        if (minSparse > 0 && options.targetZeroed() && options.backingRuns() == null) {
            Extent e = blockStatus(start, length);
            if (e.zero() && e.length() >= length) {
                return;
            }
        }
        buffer.clear().limit(length);
        read(buffer, start);
        for (int i = 0; i < length; i += compressCluster) {
            int n = Math.min(compressCluster, length - i);
            Map.Entry<Long, Long> run = options.backingRuns() == null ? null : options.backingRuns().at(start + i);
            if (run != null) {
                if (options.backingRuns().readsAsZero(run.getKey()) && !pastTargetBacking(run.getKey())) {
                    chunk.add(ChunkWrites.Kind.UNMAP, start + i, n, null);
                }
                continue; // else the target's backing file holds it
            }
            if ((minSparse > 0 || pastTargetBacking(start + i)) && ZeroBlocks.isZero(buffer, i, i + n)) {
                if (!options.targetZeroed()) {
                    zeroRange(chunk, start + i, n);
                }
                continue;
            }
            // compressed here, by the thread that read the chunk; stored when the chunk writes (in guest order)
            chunk.addCompressed(start + i, n, target.compress(buffer.slice(i, n), start + i));
        }
    }

    private void copyData(ChunkWrites chunk, long offset, int length) throws IOException {
        ByteBuffer buffer = chunk.room(offset, length);
        if ((minSparse == 0 || options.copyOffload()) && options.salvage() == null) {
            // no zero blocks to look for: the kernel may copy the bytes between the files (copy_file_range)
            chunk.add(ChunkWrites.Kind.OFFLOAD, offset, length, buffer);
            return;
        }
        read(buffer, offset);
        if (minSparse == 0 || options.copyOffload()) {
            chunk.add(ChunkWrites.Kind.DATA, offset, length, buffer.clear());
            return;
        }
        // write runs of blocks that are not all zero, and zero the runs between them where the target needs it;
        // blocks are aligned to guest offsets
        ZeroBlocks.scan(buffer, length, offset, minSparse, (from, to, zero) -> endRun(chunk, buffer, offset, from, to,
                zero));
    }

    private void endRun(ChunkWrites chunk, ByteBuffer buffer, long offset, int from, int to, boolean zero) {
        if (!zero) {
            chunk.add(ChunkWrites.Kind.DATA, offset + from, to - from, buffer.slice(from, to - from));
        } else if (!options.targetZeroed()) {
            zeroRange(chunk, offset + from, to - from);
        }
    }

    /**
     * Makes a range that reads as zero in the source read as zero in a target that does not already (qemu-img's
     * zero writes, which may deallocate): not past the end of the target's backing file, which reads as zero there.
     */
    private void zeroRange(ChunkWrites chunk, long offset, long length) {
        if (!pastTargetBacking(offset)) {
            chunk.add(ChunkWrites.Kind.UNMAP, offset, length, null);
        }
    }

    /** Makes the writes of a chunk, in the order they were recorded, when the chunk may write. */
    private void make(ChunkWrites chunk) throws IOException {
        for (ChunkWrites.Write w : chunk.writes()) {
            switch (w.kind()) {
                case DATA -> {
                    throttle(w.length());
                    target.write(w.data(), w.offset());
                }
                case COMPRESSED -> {
                    throttle(w.length());
                    w.pending().write();
                }
                case ZEROES -> writeZeroes(w.offset(), w.length());
                case UNMAP -> {
                    throttle(w.length());
                    target.writeZeroes(w.offset(), w.length(), Set.of(ZeroFlag.MAY_UNMAP));
                }
                case OFFLOAD -> offload(w.offset(), (int) w.length(), w.data());
            }
        }
        progress.accept(chunk.length());
    }

    /** Copies data by the kernel where it can; else reads it into {@code room} and writes it. */
    private void offload(long offset, int length, ByteBuffer room) throws IOException {
        try {
            source.copyTo(offset, length, target);
            throttle(length);
            return;
        } catch (IOException e) {
            // as qemu-img's failed offload: read and write, which report the failure as what it is
        }
        read(room, offset);
        room.flip();
        throttle(length);
        target.write(room, offset);
    }

    /** Whether the source's {@code offset} lies past the end of the target's backing file, where it reads as zero. */
    private boolean pastTargetBacking(long offset) {
        long backing = options.targetBackingSize();
        return backing >= 0 && offset >= backing;
    }

    private void throttle(long bytes) throws InterruptedIOException {
        if (options.throttle() != null) {
            options.throttle().acquire(bytes);
        }
    }

    /**
     * The source's extent at {@code offset}; damage QEMU's driver meets with {@code EINVAL} there is reported as
     * qemu-img reports a block status query that fails.
     */
    private Extent blockStatus(long offset, long maxLength) throws IOException {
        try {
            return source.extent(offset, maxLength);
        } catch (IOException e) {
            if (ReadFailure.invalidArgument(e)) {
                throw new ReadFailure("error while reading block status at offset ", offset, e);
            }
            throw e;
        }
    }

    /** Reads from the source; with {@code --salvage}, a sector that cannot be read is reported and reads as zeroes. */
    private void read(ByteBuffer buffer, long offset) throws IOException {
        int start = buffer.position();
        try {
            source.read(buffer, offset);
        } catch (IOException e) {
            if (options.salvage() == null) {
                throw new ReadFailure(failedUnit(offset, buffer.limit() - start, e), e);
            }
            Salvage.readSectors(source, buffer, start, offset, options.salvage());
        }
    }

    /**
     * Where qemu-img convert reports a read of {@code length} bytes at {@code offset} that failed: at its start, or
     * within compressed data at the first cluster that does not read (qemu-img reads each compressed cluster alone).
     */
    private long failedUnit(long offset, int length, IOException failure) {
        try {
            int unit = source.compressedUnit();
            if (unit <= 0 || length <= unit || !blockStatus(offset, length).compressed()) {
                return offset;
            }
            ByteBuffer one = ByteBuffer.allocate(unit);
            for (long at = offset; at < offset + length; ) {
                long next = Math.min((at / unit + 1) * unit, offset + length);
                one.clear().limit((int) (next - at));
                try {
                    source.read(one, at);
                } catch (IOException e) {
                    return at;
                }
                at = next;
            }
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
        return offset;
    }

    private void writeZeroes(long offset, long length) throws IOException {
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(CHUNK, length - done);
            throttle(n);
            target.write(ZeroBlocks.zeroes(n), offset + done);
            done += n;
        }
    }
}
