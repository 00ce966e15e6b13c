package imago.api.spi;

import java.io.IOException;
import java.nio.ByteBuffer;

/** A shared read-only buffer of zeroes, for writing zeroes without allocating per call. */
final class ZeroBuffers {
    static final int SIZE = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(SIZE).asReadOnlyBuffer();

    private ZeroBuffers() {
    }

    /** A read-only buffer of {@code length <= SIZE} zero bytes. */
    static ByteBuffer zeroes(int length) {
        return ZEROES.slice(0, length);
    }

    static void write(Storage storage, long offset, long length) throws IOException {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            int n = (int) Math.min(SIZE, end - pos);
            storage.write(zeroes(n), pos);
            pos += n;
        }
    }
}
