package imago.vmdk.internal;

import imago.api.CorruptImageException;
import imago.api.spi.Storage;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.zip.DataFormatException;

/**
 * Reads compressed grains: at the grain table entry's sector, a marker (lba u64, size u32, both little-endian) and
 * {@code size} bytes of zlib stream, or without markers the stream alone. As QEMU reads them: at most two grains of
 * compressed bytes, inflating to at most one grain. Long reads decode their grains in parallel; the last grain
 * decoded is cached for reads that take a grain piece by piece.
 */
final class VmdkCompressedGrains {
    /** The marker before a compressed grain's data: lba (8 bytes) and size (4). */
    static final int MARKER = 12;
    private static final int DECODERS = Math.max(1, Runtime.getRuntime().availableProcessors());

    private final Storage storage;
    private final String resource;
    private final int grainBytes;
    private final boolean markers;
    /** The file's size as the extent knows it (no system call per grain). */
    private final LongSupplier fileSize;
    /** Buffers for a grain's compressed bytes, kept between grains (decoders run on short-lived virtual threads). */
    private final ConcurrentLinkedQueue<ByteBuffer> scratch = new ConcurrentLinkedQueue<>();
    private static final int MAX_SCRATCH = 4 * DECODERS + 8;
    /** The last grain decoded: its host sector and bytes. */
    private final AtomicReference<Decoded> last = new AtomicReference<>();

    private record Decoded(long sector, byte[] bytes, int length) {
    }

    /** Finds the grain table entry of a grain, for {@link #read}. */
    @FunctionalInterface
    interface Lookup {
        /** The host sector of the compressed grain holding extent byte {@code offset}; its entry's place in [0]. */
        long sector(long offset, long[] entryOffset) throws IOException;
    }

    VmdkCompressedGrains(Storage storage, int grainBytes, boolean markers, LongSupplier fileSize) {
        this.storage = storage;
        this.fileSize = fileSize;
        this.resource = storage.name();
        this.grainBytes = grainBytes;
        this.markers = markers;
    }

    /**
     * Fills {@code dst} with extent bytes from {@code offset}, all in compressed grains that {@code lookup} finds.
     *
     * @param extentSize the extent's size: each grain must decode at least to it, or to the grain's end
     * @throws CorruptImageException if a grain's marker or stream is damaged
     */
    void read(ByteBuffer dst, long offset, long extentSize, Lookup lookup) throws IOException {
        if (dst.remaining() >= 2 * grainBytes && DECODERS > 1) {
            readInParallel(dst, offset, extentSize, lookup);
            return;
        }
        int start = dst.position();
        while (dst.hasRemaining()) {
            readPiece(dst, offset + (dst.position() - start), extentSize, lookup);
        }
    }

    /** Reads the part of one grain that starts at {@code dst}'s position (guest offset {@code pos}). */
    private void readPiece(ByteBuffer dst, long pos, long extentSize, Lookup lookup) throws IOException {
        long grainStart = pos / grainBytes * grainBytes;
        int inGrain = (int) (pos - grainStart);
        int n = Math.min(dst.remaining(), grainBytes - inGrain);
        long[] at = new long[1];
        long sector = lookup.sector(pos, at);
        int needed = (int) Math.min((long) grainBytes, extentSize - grainStart);
        if (inGrain == 0 && n == needed) {
            // the whole grain: decoded straight into the caller's buffer, nothing cached
            int length = decode(sector, at[0], dst.slice(dst.position(), n));
            if (length < needed) {
                throw CorruptImageException.invalidArgument(resource, sector * VmdkDescriptor.SECTOR, "the compressed grain "
                        + "inflates to " + length + " bytes, fewer than the " + needed + " the extent needs");
            }
            dst.position(dst.position() + n);
            return;
        }
        Decoded d = last.get();
        if (d == null || d.sector() != sector) {
            byte[] bytes = new byte[grainBytes];
            int length = decode(sector, at[0], ByteBuffer.wrap(bytes));
            d = new Decoded(sector, bytes, length);
            last.set(d);
        }
        if (d.length() < Math.min(needed, inGrain + n)) {
            throw CorruptImageException.invalidArgument(resource, sector * VmdkDescriptor.SECTOR, "the compressed grain "
                    + "inflates to " + d.length() + " bytes, fewer than the " + needed + " the extent needs");
        }
        dst.put(d.bytes(), inGrain, n);
    }

    private void readInParallel(ByteBuffer dst, long offset, long extentSize, Lookup lookup) throws IOException {
        int start = dst.position();
        int total = dst.remaining();
        long end = offset + total;
        Semaphore slots = new Semaphore(DECODERS);
        List<Future<Void>> parts = new ArrayList<>();
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (long pos = offset; pos < end; ) {
                long partEnd = Math.min(end, pos / grainBytes * grainBytes + grainBytes);
                ByteBuffer part = dst.slice(start + (int) (pos - offset), (int) (partEnd - pos));
                long at = pos;
                parts.add(pool.submit(() -> {
                    slots.acquire();
                    try {
                        readPiece(part, at, extentSize, lookup);
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

    /**
     * Decodes the grain at host {@code sector} into {@code out} (one grain) and returns the decoded length.
     *
     * @param entryOffset where the grain table entry pointing at it is, for messages
     * @throws CorruptImageException if the marker's size is 0, larger than two grains or past the end of the
     *         file, or the stream is damaged, cut short or inflates past one grain
     */
    int decode(long sector, long entryOffset, ByteBuffer out) throws IOException {
        long host = sector * VmdkDescriptor.SECTOR;
        long fileSize = this.fileSize.getAsLong();
        if (host >= fileSize) {
            throw CorruptImageException.invalidArgument(resource, entryOffset, "the compressed grain at sector " + sector
                    + " lies past the end of the file (" + fileSize + " bytes)");
        }
        // one read for the marker and, usually, all of the stream: a grain seldom compresses to more than itself
        ByteBuffer data = scratch.poll();
        if (data == null) {
            data = ByteBuffer.allocate(MARKER + 2 * grainBytes).order(ByteOrder.LITTLE_ENDIAN);
        }
        try {
            return decode(host, entryOffset, fileSize, data, out);
        } finally {
            if (scratch.size() < MAX_SCRATCH) {
                scratch.add(data);
            }
        }
    }

    private int decode(long host, long entryOffset, long fileSize, ByteBuffer data, ByteBuffer out)
            throws IOException {
        int first = (int) Math.min(MARKER + grainBytes, fileSize - host);
        storage.read(data.clear().limit(first), host);
        long dataAt;
        int length;
        if (markers) {
            long size = first < MARKER ? 0 : Integer.toUnsignedLong(data.getInt(8));
            if (size == 0 || size > 2L * grainBytes) {
                throw CorruptImageException.invalidArgument(resource, host + 8, "the compressed grain's marker gives a size of "
                        + size + " bytes (expected 1 to " + 2L * grainBytes + ")");
            }
            if (host + MARKER + size > fileSize) {
                throw CorruptImageException.invalidArgument(resource, host + 8, "the compressed grain's " + size
                        + " bytes run past the end of the file (" + fileSize + " bytes)");
            }
            dataAt = host + MARKER;
            length = (int) size;
            if (MARKER + length > first) {
                storage.read(data.limit(MARKER + length).position(first), host + first);
            }
            data.limit(MARKER + length).position(MARKER);
        } else {
            // QEMU hands zlib one grain's worth of input when there is no marker to give the size
            dataAt = host;
            length = (int) Math.min(grainBytes, fileSize - host);
            data.limit(length).position(0);
        }
        int before = out.position();
        VmdkDeflate.Result r;
        try {
            r = VmdkDeflate.decompress(data, out);
        } catch (DataFormatException e) {
            throw CorruptImageException.invalidArgument(resource, dataAt, "the compressed grain is not a valid zlib stream: "
                    + e.getMessage(), e);
        }
        switch (r) {
            case TOO_LONG -> throw CorruptImageException.invalidArgument(resource, dataAt, "the compressed grain inflates past "
                    + "one grain of " + grainBytes + " bytes");
            case TRUNCATED -> throw CorruptImageException.invalidArgument(resource, dataAt, "the compressed grain's zlib stream "
                    + "ends early (" + length + " bytes read)");
            case OK -> {
            }
        }
        return out.position() - before;
    }

    /** Forgets the cached grain (its place in the file is about to be reused or rewritten). */
    void forget() {
        last.set(null);
    }
}
