package imago.qcow2.internal;

import imago.api.CorruptImageException;
import imago.api.Feature;
import imago.api.ImageException;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The compression types of compressed clusters, after the header's compression_type: 0 raw deflate
 * ({@link Qcow2Deflate}, a 4 KiB window, as QEMU reads it), 1 zstd ({@link Qcow2Zstd}, through the optional
 * zstd-jni module: its absence is one {@link UnsupportedFeatureException}, whichever way it is noticed).
 */
final class Qcow2Codec {
    private final String resource;
    private final boolean zstd;

    Qcow2Codec(String resource, int compressionType) {
        this.resource = resource;
        this.zstd = compressionType != 0;
    }

    /**
     * Decompresses {@code in} (the compressed bytes read from {@code host}) into {@code out} and returns the bytes
     * produced: fewer than {@code out.length} when the data ends early.
     */
    int decompress(byte[] in, byte[] out, long host) throws IOException {
        return zstd ? unzstd(in, out, host) : inflate(in, out, host);
    }

    /**
     * Compresses one cluster, {@code plain}, into {@code packed} and returns the compressed length, or a value
     * {@code <= 0} when it does not fit.
     */
    int compress(ByteBuffer plain, ByteBuffer packed) throws UnsupportedFeatureException {
        if (!zstd) {
            return Qcow2Deflate.compress(plain, packed);
        }
        try {
            return Qcow2Zstd.compress(plain, packed);
        } catch (LinkageError e) {
            throw zstdMissing(e);
        }
    }

    private int inflate(byte[] in, byte[] out, long host) throws CorruptImageException {
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in);
            int produced = 0;
            while (produced < out.length) {
                int n = inflater.inflate(out, produced, out.length - produced);
                produced += n;
                if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
            }
            return produced;
        } catch (DataFormatException e) {
            throw new CorruptImageException(resource, host, "compressed cluster cannot be inflated: "
                    + e.getMessage(), e);
        } finally {
            inflater.end();
        }
    }

    private int unzstd(byte[] in, byte[] out, long host) throws IOException {
        try {
            return Qcow2Zstd.decompress(in, in.length, out);
        } catch (LinkageError e) {
            throw zstdMissing(e);
        } catch (ImageException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new CorruptImageException(resource, host, "compressed cluster cannot be decompressed (zstd): "
                    + e.getMessage(), e);
        }
    }

    private UnsupportedFeatureException zstdMissing(LinkageError e) {
        // ImageException fixes its cause at construction: keep the linkage failure as suppressed
        UnsupportedFeatureException u = new UnsupportedFeatureException(resource, Feature.COMPRESSION_TYPE,
                "zstd compression", "zstd support is not installed (add zstd-jni to the module path, and resolve it "
                + "with --add-modules com.github.luben.zstd_jni when imago runs as modules)");
        u.addSuppressed(e);
        return u;
    }
}
