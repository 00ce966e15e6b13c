package imago.qcow2.internal;

import com.github.luben.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;

/**
 * zstd decompression through zstd-jni, an optional module: this class is only loaded when a zstd
 * cluster is read, so that images without zstd clusters open without zstd-jni installed.
 */
final class Qcow2Zstd {
    private Qcow2Zstd() {
    }

    /**
     * Decompresses one or more frames from {@code src[0, length)} into {@code dst} and returns the
     * bytes produced (at most {@code dst.length}): decoding stops once {@code dst} is full.
     */
    static int decompress(byte[] src, int length, byte[] dst) throws IOException {
        try (ZstdInputStream in = new ZstdInputStream(new ByteArrayInputStream(src, 0, length))) {
            return in.readNBytes(dst, 0, dst.length);
        }
    }
}
