package imago.qcow2.internal;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import com.github.luben.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * zstd compression and decompression through zstd-jni, an optional module: this class is only loaded
 * when a zstd cluster is read or written, so that images without zstd clusters open without zstd-jni.
 *
 * <p>QEMU writes each compressed cluster as one zstd frame followed by sector padding. Those are
 * decoded frame by frame with pooled decompression contexts: creating a context (and, before, a
 * stream with its 128 KiB buffer and finalizer) per cluster cost more than the decompression. Input
 * that is not a sequence of whole frames fitting the cluster (legal for QEMU, which stops decoding
 * once a cluster of output exists) takes the streaming path.
 */
final class Qcow2Zstd {
    /** Idle contexts; a queue, not a ThreadLocal, because readers are often short-lived virtual threads. */
    private static final ConcurrentLinkedQueue<ZstdDecompressCtx> IDLE = new ConcurrentLinkedQueue<>();
    /** Idle compression contexts, pooled for the same reason. */
    private static final ConcurrentLinkedQueue<ZstdCompressCtx> IDLE_COMPRESS = new ConcurrentLinkedQueue<>();
    /** QEMU's level: zstd's default. */
    private static final int LEVEL = 3;
    /** More idle contexts than this are closed: enough for every core to decompress at once. */
    private static final int MAX_IDLE = Math.max(2, Runtime.getRuntime().availableProcessors() * 2);

    private Qcow2Zstd() {
    }

    /**
     * Decompresses one or more frames from {@code src[0, length)} into {@code dst} and returns the
     * bytes produced (at most {@code dst.length}): decoding stops once {@code dst} is full.
     */
    static int decompress(byte[] src, int length, byte[] dst) throws IOException {
        ZstdDecompressCtx ctx = IDLE.poll();
        if (ctx == null) {
            ctx = new ZstdDecompressCtx();
        }
        boolean reusable = false;
        try {
            int produced = framewise(ctx, src, length, dst);
            reusable = true;
            if (produced >= 0) {
                return produced;
            }
        } catch (ZstdException e) {
            // not whole frames that fit: decode as a stream below, as QEMU does
        } finally {
            if (reusable && IDLE.size() < MAX_IDLE) {
                IDLE.add(ctx);
            } else {
                ctx.close();
            }
        }
        return streaming(src, length, dst);
    }

    /**
     * Compresses {@code src}'s remaining bytes into one zstd frame (with its content size, as QEMU's
     * ZSTD_compressStream2 with ZSTD_e_end writes it) at {@code dst}'s position, and returns its length,
     * or -1 if it does not fit {@code dst.remaining()}. Positions and limits are left as they are. Direct
     * buffers go to zstd as they are; heap buffers through their arrays.
     */
    static int compress(ByteBuffer src, ByteBuffer dst) {
        ZstdCompressCtx ctx = IDLE_COMPRESS.poll();
        if (ctx == null) {
            ctx = new ZstdCompressCtx();
            ctx.setLevel(LEVEL);
        }
        boolean reusable = false;
        try {
            int n;
            if (src.isDirect() && dst.isDirect()) {
                n = ctx.compressDirectByteBuffer(dst, dst.position(), dst.remaining(), src, src.position(),
                        src.remaining());
            } else {
                n = ctx.compressByteArray(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining(),
                        src.array(), src.arrayOffset() + src.position(), src.remaining());
            }
            reusable = true;
            return n;
        } catch (ZstdException e) {
            // dstSize_tooSmall: the cluster does not shrink (the context is in an unknown state: dropped)
            return -1;
        } finally {
            if (reusable && IDLE_COMPRESS.size() < MAX_IDLE) {
                IDLE_COMPRESS.add(ctx);
            } else {
                ctx.close();
            }
        }
    }

    /** Whole frames one after another; -1 when the input is not such a sequence. */
    private static int framewise(ZstdDecompressCtx ctx, byte[] src, int length, byte[] dst) {
        int in = 0;
        int out = 0;
        while (out < dst.length && in < length) {
            long frame = Zstd.findFrameCompressedSize(src, in, length - in);
            if (frame <= 0 || frame > length - in) {
                return out > 0 ? out : -1; // padding after the frames, or not a frame at all
            }
            ctx.reset();
            out += ctx.decompressByteArray(dst, out, dst.length - out, src, in, (int) frame);
            in += (int) frame;
        }
        return out;
    }

    private static int streaming(byte[] src, int length, byte[] dst) throws IOException {
        try (ZstdInputStream in = new ZstdInputStream(new ByteArrayInputStream(src, 0, length))) {
            return in.readNBytes(dst, 0, dst.length);
        }
    }
}
