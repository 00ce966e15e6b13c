package imago.api.spi;

import imago.api.Feature;
import imago.api.PendingWrite;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The write path of a {@link LayeredImage}: data written through the layer's write tickets, compressed writes,
 * zero writes with their fallback to explicit zeroes, and the {@link WriteGuard} over the first sector. The
 * caller checks the bounds and holds the image open.
 */
final class LayerWrites {
    /** The most bytes one write ticket of {@link #copyFrom} covers. */
    private static final long COPY_STEP = 4 << 20;

    private final String name;
    private final String format;
    private final FormatInstance layer;
    private final BackingReader below;
    private final LayerContract contract;
    private final LayerReads reads;
    private final WriteGuard guard;
    /** Serialises guarded writes to the first sector, so the guard sees what the write produces. */
    private final ReentrantLock guardLock = new ReentrantLock();

    LayerWrites(String name, String format, FormatInstance layer, BackingReader below, LayerContract contract,
            LayerReads reads, WriteGuard guard) {
        this.name = name;
        this.format = format;
        this.layer = layer;
        this.below = below;
        this.contract = contract;
        this.reads = reads;
        this.guard = guard;
    }

    /** An I/O step that may need the guard's consent first. */
    @FunctionalInterface
    private interface Step {
        void run() throws IOException;
    }

    /** Runs {@code step}, which writes {@code src} at {@code offset}, past the guard when it touches the first sector. */
    private void guarded(ByteBuffer src, long offset, Step step) throws IOException {
        if (guard == null || offset >= WriteGuard.GUARDED_BYTES || !src.hasRemaining()) {
            step.run();
            return;
        }
        guardLock.lock();
        try {
            checkGuard(src, offset);
            step.run();
        } finally {
            guardLock.unlock();
        }
    }

    /** Builds the first sector as it will be after writing {@code src} at {@code offset}, and asks the guard. */
    private void checkGuard(ByteBuffer src, long offset) throws IOException {
        int sector = (int) Math.min(WriteGuard.GUARDED_BYTES, layer.size());
        ByteBuffer first = ByteBuffer.allocate(sector);
        reads.read(first, 0);
        int n = (int) Math.min(src.remaining(), sector - offset);
        first.put((int) offset, src, src.position(), n);
        guard.check(first.clear().asReadOnlyBuffer());
    }

    /** Writes {@code src} at {@code offset}. */
    void write(ByteBuffer src, long offset) throws IOException {
        guarded(src, offset, () -> writeLayer(src, offset));
    }

    private void writeLayer(ByteBuffer src, long offset) throws IOException {
        long pos = offset;
        while (src.hasRemaining()) {
            try (WriteTicket t = layer.beginWrite(pos, src.remaining(), below)) {
                int n = (int) contract.checked(t.mapping(), pos, src.remaining()).length();
                // a failed write closes the ticket uncommitted: the layer rolls the allocation back
                t.write(src.slice(src.position(), n));
                t.commit();
                src.position(src.position() + n);
                pos += n;
            }
        }
    }

    /**
     * Writes {@code length} bytes that lie unchanged in {@code source} from {@code sourceOffset} on at {@code offset},
     * through the layer's write tickets, which may let the storages copy them ({@link WriteTicket#copyFrom}). A write
     * the guard must see goes through memory.
     */
    void copyFrom(Storage source, long sourceOffset, long length, long offset) throws IOException {
        long pos = offset;
        long end = offset + length;
        if (guard != null && pos < WriteGuard.GUARDED_BYTES && pos < end) {
            ByteBuffer first = ByteBuffer.allocate((int) Math.min(end - pos, WriteGuard.GUARDED_BYTES - pos));
            source.read(first, sourceOffset);
            write(first.flip(), pos);
            pos += first.limit();
        }
        while (pos < end) {
            // a ticket may read its bytes into memory (a transforming layer): at most COPY_STEP of them
            long step = Math.min(end - pos, COPY_STEP);
            try (WriteTicket t = layer.beginWrite(pos, step, below)) {
                long n = contract.checked(t.mapping(), pos, step).length();
                // a failed copy closes the ticket uncommitted: the layer rolls the allocation back
                t.copyFrom(source, sourceOffset + (pos - offset));
                t.commit();
                pos += n;
            }
        }
    }

    /** Writes one whole cluster (or the last, partial one) compressed, or the ordinary way when it does not shrink. */
    void writeCompressed(ByteBuffer src, long offset) throws IOException {
        if (!src.hasRemaining() && offset == 0) {
            // the end of a run of compressed writes (qemu-img convert -c's last, empty one)
            compressedWriter().writeCompressed(src, 0);
            return;
        }
        CompressedWriter writer = compressedWriter(src, offset);
        guarded(src, offset, () -> {
            if (writer.writeCompressed(src, offset)) {
                src.position(src.limit());
            } else {
                // the data does not shrink: stored the ordinary way, as QEMU does
                writeLayer(src, offset);
            }
        });
    }

    /** Compresses one cluster now, as {@link #writeCompressed} would, and returns the write that stores it. */
    PendingWrite compress(ByteBuffer src, long offset) throws IOException {
        CompressedWriter.Store store = compressedWriter(src, offset).compress(src, offset);
        return () -> guarded(src, offset, () -> {
            if (store.store()) {
                src.position(src.limit());
            } else {
                writeLayer(src, offset);
            }
        });
    }

    /** The layer's compressed writer. */
    private CompressedWriter compressedWriter() throws IOException {
        return layer.capability(CompressedWriter.class).orElseThrow(() ->
                new UnsupportedFeatureException(name, Feature.COMPRESSED_WRITES, "the " + format
                        + " format cannot store compressed data"));
    }

    /** The layer's compressed writer, once {@code src} is found to be one whole cluster (or the last). */
    private CompressedWriter compressedWriter(ByteBuffer src, long offset) throws IOException {
        CompressedWriter writer = compressedWriter();
        long unit = layer.clusterSize().orElseThrow(() -> new IllegalStateException(format + " driver stores "
                + "compressed clusters but has no cluster size"));
        int length = src.remaining();
        long size = layer.size();
        if (offset % unit != 0 || length != unit && !(length > 0 && length < unit && offset + length == size)) {
            throw new IllegalArgumentException(name + ": a compressed write must cover one whole "
                    + unit + "-byte cluster (or the last cluster up to the end of the image), got " + length
                    + " bytes at offset " + offset);
        }
        return writer;
    }

    /**
     * Zeroes {@code [offset, offset + length)}: by the layer's metadata where it can, else by writing zeroes up to
     * the layer's next zero unit and asking again (never, with {@link ZeroFlag#NO_FALLBACK}).
     */
    void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long handled = layer.ensureZeroMapping(pos, end - pos, flags, below);
            if (handled < 0 || handled > end - pos) {
                throw new IllegalStateException(format + " driver zeroed " + handled + " bytes of a "
                        + (end - pos) + "-byte request");
            }
            if (handled == 0) {
                if (flags.contains(ZeroFlag.NO_FALLBACK)) {
                    throw new UnsupportedFeatureException(name, Feature.EFFICIENT_ZEROES,
                            "cannot zero " + (end - pos) + " bytes at offset " + pos + " without writing zeroes");
                }
                long unit = layer.zeroAlignment().orElse(ZeroBuffers.SIZE);
                long unitEnd = (pos / unit + 1) * unit;
                int n = (int) Math.min(Math.min(ZeroBuffers.SIZE, end - pos), unitEnd - pos);
                write(ZeroBuffers.zeroes(n), pos);
                handled = n;
            }
            pos += handled;
        }
    }

    /** Discards {@code [offset, offset + length)} in the layer; an empty range asks nothing of it. */
    void discard(long offset, long length) throws IOException {
        if (length > 0) {
            layer.discard(offset, length);
        }
    }
}
