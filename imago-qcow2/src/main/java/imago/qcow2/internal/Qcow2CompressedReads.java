package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.ImageException;
import imago.api.Mapping;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Reads of compressed clusters ({@code Special} mappings): each cluster read and decoded whole, the last one kept
 * for partial reads, the whole clusters of a long read decoded in parallel.
 */
final class Qcow2CompressedReads extends Qcow2Room {
    /** Clusters decoded at once by one read: QEMU decompresses in its thread pool too. */
    private static final int DECODERS = Math.max(1, Runtime.getRuntime().availableProcessors());

    /** The last decompressed cluster. */
    private record Decompressed(long entry, byte[] data) {
    }

    private final Qcow2Mapping mapping;
    private final Qcow2Codec codec;
    private final AtomicReference<Decompressed> lastDecompressed = new AtomicReference<>();
    private final AtomicLong decompressions = new AtomicLong();

    Qcow2CompressedReads(Qcow2State st, Qcow2Mapping mapping) {
        super(st);
        this.mapping = mapping;
        this.codec = new Qcow2Codec(st.resource, st.header.compressionType());
    }

    /** How many clusters were decompressed (for tests). */
    long decompressions() {
        return decompressions.get();
    }

    /**
     * Forgets the last decoded cluster: its entry may come back for other bytes (packed again at the same place,
     * a snapshot applied, a repair).
     */
    void forget() {
        lastDecompressed.set(null);
    }

    void readSpecial(Mapping.Special special, ByteBuffer dst, long offset) throws IOException {
        if (dst.remaining() >= 2L * clusterSize && DECODERS > 1) {
            readCompressedInParallel(dst, offset);
            return;
        }
        readCompressed(dst, offset);
    }

    /**
     * Decodes the whole clusters of a long read on virtual threads, at most {@link #DECODERS} at a time,
     * each into its own slice of {@code dst}; partial clusters at either end go through the cache.
     */
    private void readCompressedInParallel(ByteBuffer dst, long offset) throws IOException {
        int start = dst.position();
        int total = dst.remaining();
        long end = offset + total;
        Semaphore slots = new Semaphore(DECODERS);
        List<Future<Void>> parts = new ArrayList<>();
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (long pos = offset; pos < end; ) {
                long clusterEnd = (pos & -(long) clusterSize) + clusterSize;
                long partEnd = Math.min(end, clusterEnd);
                ByteBuffer part = dst.slice(start + (int) (pos - offset), (int) (partEnd - pos));
                long at = pos;
                parts.add(pool.submit(() -> {
                    slots.acquire();
                    try {
                        readCompressed(part, at);
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
                pos = partEnd;
            }
            IOException failure = null;
            for (Future<Void> f : parts) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof RuntimeException r) {
                        throw r;
                    }
                    if (c instanceof Error err) {
                        throw err;
                    }
                    IOException io = c instanceof IOException x ? x : new IOException(c);
                    if (failure == null) {
                        failure = io;
                    } else if (failure != io) {
                        failure.addSuppressed(io);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException(resource + ": interrupted while decompressing");
                }
            }
            if (failure != null) {
                throw failure;
            }
        }
        dst.position(start + total);
    }

    private void readCompressed(ByteBuffer dst, long offset) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            Qcow2Mapping.Unit u = mapping.unit(pos);
            if (u.kind() != Qcow2Mapping.Kind.COMPRESSED) {
                throw new ImageException(resource, "guest offset " + pos + " is not a compressed cluster");
            }
            byte[] data = decompressed(u.entry(), pos);
            int inCluster = (int) (pos & (clusterSize - 1));
            int n = Math.min(dst.remaining(), clusterSize - inCluster);
            dst.put(data, inCluster, n);
            pos += n;
        }
    }

    byte[] decompressed(long entry, long guestOffset) throws IOException {
        Decompressed last = lastDecompressed.get();
        if (last != null && last.entry() == entry) {
            return last.data();
        }
        long host = Qcow2Entries.compressedHost(entry, clusterBits);
        long sectors = Qcow2Entries.compressedSectors(entry, clusterBits);
        // QEMU reads nb_csectors * 512 - (offset & 511) bytes from the byte-granular offset
        long length = sectors * 512 - (host & 511);
        long fileEnd = (st.fileSize + 511) & ~511L;
        if (Qcow2Checks.add(resource, host, host, length, "compressed cluster range") > fileEnd) {
            throw new CorruptImageException(resource, host, "compressed cluster at guest offset " + guestOffset
                    + " (" + length + " bytes) extends past the end of the file");
        }
        decompressions.incrementAndGet();
        byte[] in = new byte[(int) length];
        storage.read(ByteBuffer.wrap(in), host);
        byte[] out = new byte[clusterSize];
        int produced = codec.decompress(in, out, host);
        if (produced != clusterSize) {
            throw new CorruptImageException(resource, host, "compressed cluster at guest offset " + guestOffset
                    + " decompresses to " + produced + " bytes instead of " + clusterSize);
        }
        lastDecompressed.set(new Decompressed(entry, out));
        return out;
    }
}
