package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.Image;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import java.util.function.ToIntFunction;

/**
 * Guest content the tests of a read-only format build images of (bochs, cloop, dmg: formats imago and qemu-img only
 * read), and the check that an image reads it back whole and in odd pieces.
 */
public final class GuestContent {
    private GuestContent() {
    }

    /**
     * {@code length} bytes in runs of random bytes, zeroes and a repeated non-zero byte, a third of each on average,
     * each run as long as {@code runLength} draws from {@code random} (cut at the end).
     */
    public static byte[] runs(int length, Random random, ToIntFunction<Random> runLength) {
        byte[] c = new byte[length];
        int at = 0;
        while (at < length) {
            int run = Math.min(length - at, runLength.applyAsInt(random));
            switch (random.nextInt(3)) {
                case 0 -> {
                    byte[] r = new byte[run];
                    random.nextBytes(r);
                    System.arraycopy(r, 0, c, at, run);
                }
                case 1 -> Arrays.fill(c, at, at + run, (byte) (1 + random.nextInt(255)));
                default -> { }
            }
            at += run;
        }
        return c;
    }

    /**
     * Asserts that {@code image} is as long as {@code expected} and reads it whole, then in {@code pieces} reads at
     * random offsets of 1 to {@code maxPiece} bytes each (cut at the end), which cross the format's sectors, blocks
     * or chunks at odd places.
     *
     * @throws IOException if a read fails
     */
    public static void assertReads(Image image, byte[] expected, Random random, int pieces, int maxPiece)
            throws IOException {
        assertEquals(expected.length, image.size());
        ByteBuffer all = ByteBuffer.allocate((int) image.size());
        image.read(all, 0);
        assertArrayEquals(expected, all.array());
        for (int k = 0; k < pieces; k++) {
            int from = random.nextInt(expected.length);
            int n = Math.min(expected.length - from, 1 + random.nextInt(maxPiece));
            ByteBuffer part = ByteBuffer.allocate(n);
            image.read(part, from);
            assertArrayEquals(Arrays.copyOfRange(expected, from, from + n), part.array(), "at " + from);
        }
    }
}
