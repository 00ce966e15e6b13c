package imago.nbd.internal.client;

import imago.api.Feature;
import imago.api.ImageException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.nbd.internal.Nbd;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * An NBD export as a {@link Storage}. Requests larger than the server's maximum block size are split, and the parts
 * sent at once; concurrent callers share the connection, whose requests are in flight together. Holes come from
 * the {@code base:allocation} meta context: a range that is both a hole and reads as zero
 * ({@code NBD_STATE_HOLE | NBD_STATE_ZERO}) is a hole, anything else data. The export's size is fixed: it cannot be
 * grown or shrunk, and writes past its end fail. Names stored inside an image on an export are never resolved.
 */
final class NbdStorage implements Storage {
    /** The longest zero, trim or block status request sent at once (they carry no payload). */
    static final long MAX_UNPAYLOADED = 1L << 30;

    private final NbdUri uri;
    private final NbdConnection connection;
    private final ExportInfo info;
    private final boolean writable;
    private final ExtentCache extents = new ExtentCache();

    NbdStorage(NbdUri uri, NbdConnection connection, boolean writable) {
        this.uri = uri;
        this.connection = connection;
        this.info = connection.info();
        this.writable = writable;
    }

    @Override
    public String name() {
        return uri.canonical();
    }

    @Override
    public StorageLocation location() {
        return uri.location();
    }

    @Override
    public long size() {
        return info.size();
    }

    @Override
    public boolean readOnly() {
        return !writable;
    }

    @Override
    public int requestAlignment() {
        return info.minBlock();
    }

    @Override
    public void read(ByteBuffer dst, long offset) throws IOException {
        checkOffset(offset);
        int total = dst.remaining();
        long inside = Math.max(0, Math.min(total, info.size() - offset));
        List<Pending> sent = new ArrayList<>();
        IOException failed = null;
        try {
            for (long done = 0; done < inside; ) {
                int n = (int) Math.min(info.maxBlock(), inside - done);
                ByteBuffer part = dst.slice(dst.position() + (int) done, n);
                sent.add(connection.send(Nbd.CMD_READ, 0, offset + done, n, null, part));
                done += n;
            }
        } catch (IOException e) {
            failed = e;
        }
        failed = awaitAll(sent, failed);
        if (failed != null) {
            throw failed;
        }
        // bytes past the end read as zeroes, as the Storage contract has it
        for (int i = dst.position() + (int) inside; i < dst.limit(); i++) {
            dst.put(i, (byte) 0);
        }
        dst.position(dst.limit());
    }

    @Override
    public void write(ByteBuffer src, long offset) throws IOException {
        checkWritable(offset);
        int total = src.remaining();
        checkInside(offset, total, "write");
        List<Pending> sent = new ArrayList<>();
        IOException failed = null;
        extents.clear();
        try {
            for (int done = 0; done < total; ) {
                int n = Math.min(info.maxBlock(), total - done);
                sent.add(connection.send(Nbd.CMD_WRITE, 0, offset + done, n, src.slice(src.position() + done, n),
                        null));
                done += n;
            }
        } catch (IOException e) {
            failed = e;
        }
        failed = awaitAll(sent, failed);
        extents.clear();
        if (failed != null) {
            throw failed;
        }
        src.position(src.limit());
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayUnmap) throws IOException {
        checkWritable(offset);
        checkInside(offset, length, "zero write");
        if (!info.has(Nbd.FLAG_SEND_WRITE_ZEROES)) {
            Storage.super.writeZeroes(offset, length, mayUnmap);
            return;
        }
        unpayloaded(Nbd.CMD_WRITE_ZEROES, mayUnmap ? 0 : Nbd.CMD_FLAG_NO_HOLE, offset, length);
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable(offset);
        if (info.has(Nbd.FLAG_SEND_TRIM) && offset < info.size()) {
            unpayloaded(Nbd.CMD_TRIM, 0, offset, Math.min(length, info.size() - offset));
        }
    }

    @Override
    public void flush() throws IOException {
        if (writable && info.has(Nbd.FLAG_SEND_FLUSH)) {
            connection.call(Nbd.CMD_FLUSH, 0, 0, 0);
        }
    }

    /** The same as {@link #flush()}: an NBD flush makes the writes before it durable. */
    @Override
    public void sync() throws IOException {
        flush();
    }

    @Override
    public void resize(long size, Preallocation preallocation) throws IOException {
        if (size != info.size()) {
            throw new UnsupportedFeatureException(uri.text(), Feature.RESIZE, "an NBD export cannot be resized (its size "
                    + "is " + info.size() + " bytes)");
        }
    }

    @Override
    public StorageExtent dataExtent(long offset, long maxLength) throws IOException {
        long size = info.size();
        if (offset >= size || info.baseAllocation() < 0) {
            return Storage.super.dataExtent(offset, maxLength);
        }
        StorageExtent known = extents.find(offset, maxLength);
        if (known != null) {
            return known;
        }
        long length = Math.min(Math.min(maxLength, size - offset), MAX_UNPAYLOADED);
        long seen = extents.generation();
        Pending p = connection.call(Nbd.CMD_BLOCK_STATUS, 0, offset, length);
        if (p.descriptors.isEmpty()) {
            throw new ImageException(uri.text(), offset, "the NBD server answered block status without an extent", null);
        }
        ExtentCache.Runs reply = ExtentCache.Runs.of(offset, offset + length, p.descriptors);
        extents.keep(reply, seen);
        return reply.find(offset, maxLength);
    }

    @Override
    public void close() {
        connection.close();
    }

    private void unpayloaded(int type, int flags, long offset, long length) throws IOException {
        List<Pending> sent = new ArrayList<>();
        IOException failed = null;
        extents.clear();
        try {
            for (long done = 0; done < length; ) {
                long n = Math.min(MAX_UNPAYLOADED, length - done);
                sent.add(connection.send(type, flags, offset + done, n, null, null));
                done += n;
            }
        } catch (IOException e) {
            failed = e;
        }
        failed = awaitAll(sent, failed);
        extents.clear();
        if (failed != null) {
            throw failed;
        }
    }

    /** Waits for every request sent (a read's data lands in the caller's buffer); the first failure, if any. */
    private IOException awaitAll(List<Pending> sent, IOException failed) {
        for (Pending p : sent) {
            try {
                connection.await(p);
            } catch (IOException e) {
                if (failed == null) {
                    failed = e;
                }
            }
        }
        return failed;
    }

    private void checkOffset(long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
    }

    private void checkWritable(long offset) throws ReadOnlyImageException {
        checkOffset(offset);
        if (!writable) {
            throw new ReadOnlyImageException(uri.text(), offset, "opened read-only");
        }
    }

    private void checkInside(long offset, long length, String what) throws ImageException {
        if (offset > info.size() || length > info.size() - offset) {
            throw new ImageException(uri.text(), offset, "a " + what + " of " + length + " bytes past the end of the NBD "
                    + "export (" + info.size() + " bytes; an export cannot grow)", null);
        }
    }
}
