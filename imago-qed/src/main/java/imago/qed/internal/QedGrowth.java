package imago.qed.internal;

import imago.api.spi.BackingReader;
import imago.api.spi.FormatInstance;
import imago.api.spi.WriteTicket;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * What a QED resize over a longer backing file must do after the header grew: make the new area read as zero instead
 * of as the backing file's bytes, through the image's own zero and write paths.
 */
final class QedGrowth {
    private QedGrowth() {
    }

    /**
     * Makes {@code [from, to)} of {@code image} read as zero: whole clusters by metadata, partial ones by writing
     * zeroes over what lies {@code below}.
     */
    static void zero(FormatInstance image, int clusterSize, long from, long to, BackingReader below)
            throws IOException {
        long pos = from;
        while (pos < to) {
            long done = image.ensureZeroMapping(pos, to - pos, false);
            if (done > 0) {
                pos += done;
                continue;
            }
            long stop = Math.min(to, (pos & -(long) clusterSize) + clusterSize);
            try (WriteTicket t = image.beginWrite(pos, stop - pos, below)) {
                t.write(ByteBuffer.allocate((int) t.mapping().length()));
                t.commit();
                pos += t.mapping().length();
            }
        }
    }
}
