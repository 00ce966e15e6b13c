package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * The one pass in which a {@linkplain Layout#writingOnce() write-once} image is written: each granule once, in a
 * random order (drawn from the content), all-zero granules skipped as {@code qemu-img convert} skips them.
 */
final class WriteOncePass {
    private WriteOncePass() {
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
     * Writes {@code content} into the fresh {@code image} in one pass, its granules in an order drawn from the content
     * (every other whole granule compressed, as {@code convert -c} writes it, if the image has compressed writes);
     * after the first granule, checks that writing it again is refused as an {@link Feature#OVERWRITES overwrite}.
     *
     * @throws IOException as the image's writes
     */
    static void write(Image image, byte[] content, int granularity) throws IOException {
        boolean refusalChecked = false;
        // a compressed write takes one cluster: only when the layout's granule is one
        boolean compressedToo = image.supports(Feature.COMPRESSED_WRITES)
                && image.info().clusterSize().equals(java.util.OptionalInt.of(granularity));
        int granules = (content.length + granularity - 1) / granularity;
        List<Integer> order = new ArrayList<>(IntStream.range(0, granules).boxed().toList());
        Collections.shuffle(order, new Random(Arrays.hashCode(content)));
        for (int g : order) {
            int from = g * granularity;
            int to = Math.min(content.length, from + granularity);
            if (Arrays.equals(content, from, to, new byte[to - from], 0, to - from)) {
                continue; // convert leaves zero granules unallocated
            }
            ByteBuffer granule = ByteBuffer.wrap(content, from, to - from).slice();
            if (compressedToo && to - from == granularity && g % 2 == 1) {
                image.writeCompressed(granule, from); // convert -c's path
            } else {
                image.write(granule, from);
            }
            if (!refusalChecked) {
                assertRefused(image, from, "a write over a granule written already");
                refusalChecked = true;
            }
        }
    }

    /** Asserts that a write of one sector at {@code offset} is refused as an overwrite, naming the image. */
    static void assertRefused(Image image, long offset, String what) {
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> image.write(ByteBuffer.allocate(512), offset), () -> what + " at " + offset + " is not refused");
        assertEquals(Feature.OVERWRITES, e.feature(), () -> what + " refused as " + e.feature() + ": "
                + e.getMessage());
        if (e.getMessage() == null || e.getMessage().isBlank()) {
            throw new AssertionError(what + ": refused with no message");
        }
    }
}
