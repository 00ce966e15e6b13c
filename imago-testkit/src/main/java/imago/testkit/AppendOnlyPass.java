package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The one sequential pass in which an {@linkplain Layout#appendingOnly() append-only} image is written, as
 * {@code qemu-img convert} writes one: granule after granule in guest order, all-zero granules skipped.
 */
final class AppendOnlyPass {
    private AppendOnlyPass() {
    }

    /**
     * {@code size} bytes of guest content from {@code seed}, each granule of {@code granularity} bytes zero, random
     * (which does not compress) or repeating (which does), the last granule never zero.
     */
    static byte[] content(long seed, int size, int granularity) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] b = new byte[size];
        for (int from = 0; from < size; from += granularity) {
            int to = Math.min(size, from + granularity);
            int kind = to == size ? 1 + r.nextInt(2) : r.nextInt(3);
            switch (kind) {
                case 0 -> { }
                case 1 -> {
                    byte[] random = new byte[to - from];
                    r.nextBytes(random);
                    System.arraycopy(random, 0, b, from, random.length);
                }
                default -> {
                    int period = 1 + r.nextInt(300);
                    for (int i = from; i < to; i++) {
                        b[i] = (byte) (i % period + 1);
                    }
                }
            }
        }
        return b;
    }

    /**
     * Writes {@code content} into the fresh {@code image} in one pass (every other whole granule compressed, as
     * {@code convert -c} writes it, if the image has compressed writes); after the first granule past the start, checks
     * that a write behind what was appended (at 0) is refused as a {@link Feature#RANDOM_WRITES random write}.
     *
     * @throws IOException as the image's writes
     */
    static void write(Image image, byte[] content, int granularity) throws IOException {
        boolean refusalChecked = false;
        // a compressed write takes one cluster: only when the layout's granule is one
        boolean compressedToo = image.supports(Feature.COMPRESSED_WRITES)
                && image.info().clusterSize().equals(java.util.OptionalInt.of(granularity));
        for (int from = 0; from < content.length; from += granularity) {
            int to = Math.min(content.length, from + granularity);
            if (Arrays.equals(content, from, to, new byte[to - from], 0, to - from)) {
                continue; // convert leaves zero granules unallocated
            }
            ByteBuffer granule = ByteBuffer.wrap(content, from, to - from).slice();
            if (compressedToo && to - from == granularity && from / granularity % 2 == 1) {
                image.writeCompressed(granule, from); // convert -c's path
            } else {
                image.write(granule, from);
            }
            if (from > 0 && !refusalChecked) {
                assertRefused(image, 0, "a write behind what was appended");
                refusalChecked = true;
            }
        }
    }

    /** Asserts that a write of one sector at {@code offset} is refused as a random write, naming the image. */
    static void assertRefused(Image image, long offset, String what) {
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> image.write(ByteBuffer.allocate(512), offset), () -> what + " at " + offset + " is not refused");
        assertEquals(Feature.RANDOM_WRITES, e.feature(), () -> what + " refused as " + e.feature() + ": "
                + e.getMessage());
        if (e.getMessage() == null || e.getMessage().isBlank()) {
            throw new AssertionError(what + ": refused with no message");
        }
    }
}
