package imago.qcow2.internal;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.zip.Deflater;

/**
 * Raw deflate (RFC 1951) of one cluster for compressed writes, readable with a 4 KiB window as QEMU
 * reads it ({@code inflateInit2(-12)}). {@link Deflater} always uses a 32 KiB window, so the cluster is
 * deflated in {@link #PIECE}-byte pieces with a full flush after each (which forgets all earlier input),
 * each piece with the {@link #HISTORY} bytes before it as preset dictionary (allowed for raw deflate
 * after a full flush): no back-reference reaches further than {@code PIECE + HISTORY} = 4 KiB, yet most
 * positions see nearly as much history as QEMU's sliding window gives (about 6% larger output than
 * zlib with a 4 KiB window on executables, against 9% for independent 4 KiB pieces). Deflaters are
 * pooled, as creating one per cluster costs more than a small cluster's compression.
 */
final class Qcow2Deflate {
    /** QEMU's window: 2^12 bytes. */
    static final int WINDOW = 1 << 12;
    /** Bytes deflated between full flushes. */
    static final int PIECE = 3072;
    /** Bytes before a piece given as its dictionary: PIECE + HISTORY must not exceed the window. */
    static final int HISTORY = WINDOW - PIECE;
    private static final ConcurrentLinkedQueue<Deflater> IDLE = new ConcurrentLinkedQueue<>();
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors() * 2);

    private Qcow2Deflate() {
    }

    /**
     * Deflates {@code src}'s remaining bytes (at QEMU's level, zlib's default) to {@code dst}'s position and
     * returns the compressed length, or -1 if it does not fit {@code dst.remaining()}. Positions and limits
     * are left as they are; direct buffers are read and written in place by zlib.
     */
    static int compress(ByteBuffer src, ByteBuffer dst) {
        Deflater d = IDLE.poll();
        if (d == null) {
            d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        }
        try {
            return compress(d, src.slice(), dst.slice());
        } finally {
            d.reset();
            if (IDLE.size() < MAX_IDLE) {
                IDLE.add(d);
            } else {
                d.end();
            }
        }
    }

    /** {@code src} and {@code dst} are slices: positions from 0; {@code dst}'s position counts the output. */
    private static int compress(Deflater d, ByteBuffer src, ByteBuffer dst) {
        int length = src.remaining();
        for (int pos = 0; pos < length; pos += PIECE) {
            int n = Math.min(PIECE, length - pos);
            if (pos > 0) {
                int h = Math.min(HISTORY, pos);
                d.setDictionary(src.slice(pos - h, h));
            }
            d.setInput(src.slice(pos, n));
            if (pos + n == length) {
                d.finish();
                while (!d.finished()) {
                    if (!dst.hasRemaining()) {
                        return -1;
                    }
                    d.deflate(dst, Deflater.NO_FLUSH);
                }
            } else {
                while (true) {
                    int room = dst.remaining();
                    if (room == 0) {
                        return -1;
                    }
                    int k = d.deflate(dst, Deflater.FULL_FLUSH);
                    // a full flush is complete once it leaves output space unused
                    if (k < room) {
                        break;
                    }
                }
            }
        }
        return dst.position();
    }
}
