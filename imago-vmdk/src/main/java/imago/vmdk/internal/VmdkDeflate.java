package imago.vmdk.internal;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * Compressed grains: zlib streams (RFC 1950: a deflate stream with the zlib header and Adler-32 trailer), at zlib's
 * default level, as QEMU's {@code compress()} writes them. Inflaters and deflaters are pooled, as creating one per
 * grain costs more than a small grain's work.
 */
final class VmdkDeflate {
    private static final ConcurrentLinkedQueue<Deflater> IDLE_DEFLATERS = new ConcurrentLinkedQueue<>();
    private static final ConcurrentLinkedQueue<Inflater> IDLE_INFLATERS = new ConcurrentLinkedQueue<>();
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors() * 2);

    private VmdkDeflate() {
    }

    /**
     * Compresses {@code src}'s remaining bytes into {@code dst} from its position and returns the compressed
     * length, or -1 if it does not fit {@code dst.remaining()}. Positions and limits are left as they are.
     */
    static int compress(ByteBuffer src, ByteBuffer dst) {
        Deflater d = IDLE_DEFLATERS.poll();
        if (d == null) {
            d = new Deflater(Deflater.DEFAULT_COMPRESSION, false);
        }
        try {
            ByteBuffer out = dst.slice();
            d.setInput(src.slice());
            d.finish();
            while (!d.finished()) {
                if (!out.hasRemaining()) {
                    return -1;
                }
                d.deflate(out);
            }
            return out.position();
        } finally {
            d.reset();
            if (IDLE_DEFLATERS.size() < MAX_IDLE) {
                IDLE_DEFLATERS.add(d);
            } else {
                d.end();
            }
        }
    }

    /** What a compressed grain decoded to. */
    enum Result {
        /** The stream ended, its checksum matched, and its output fitted. */
        OK,
        /** The stream produces more than the output holds (a grain inflating past its size). */
        TOO_LONG,
        /** The input ended before the stream did. */
        TRUNCATED
    }

    /**
     * Inflates the zlib stream in {@code src} into {@code dst} (at most its remaining bytes, which it advances).
     *
     * @throws DataFormatException if the stream is not valid zlib data
     */
    static Result decompress(ByteBuffer src, ByteBuffer dst) throws DataFormatException {
        Inflater inf = IDLE_INFLATERS.poll();
        if (inf == null) {
            inf = new Inflater(false);
        }
        try {
            inf.setInput(src.slice());
            ByteBuffer probe = null;
            while (!inf.finished()) {
                int n;
                if (dst.hasRemaining()) {
                    n = inf.inflate(dst);
                } else {
                    // a stream whose data fill the output exactly still has to reach its end (and checksum)
                    probe = probe == null ? ByteBuffer.allocate(1) : probe.clear();
                    n = inf.inflate(probe);
                    if (n > 0) {
                        return Result.TOO_LONG;
                    }
                }
                if (n == 0 && !inf.finished() && (inf.needsInput() || inf.needsDictionary())) {
                    return Result.TRUNCATED;
                }
            }
            return Result.OK;
        } finally {
            inf.reset();
            if (IDLE_INFLATERS.size() < MAX_IDLE) {
                IDLE_INFLATERS.add(inf);
            } else {
                inf.end();
            }
        }
    }
}
