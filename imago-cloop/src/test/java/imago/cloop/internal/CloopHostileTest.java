package imago.cloop.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Hostile headers, tables and blocks: one clear exception naming the file and offset each, with QEMU's words where
 * QEMU refuses too (checked against {@code qemu-img info -f cloop}); bounded memory whatever the header claims.
 */
class CloopHostileTest {
    @TempDir
    Path dir;

    private int files;

    private byte[] good() {
        return CloopImages.image(CloopImages.V2, 4096, CloopReadDifferentialTest.content(4 * 4096, new Random(9)));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "1000      | 4          | block_size 1000 must be a multiple of 512",
        "0         | 4          | block_size cannot be zero",
        "134217728 | 4          | block_size 134217728 must be 64 MB or less",
        "1024      | 536870912  | n_blocks 536870912 must be 536870911 or less",
        "1024      | 67108864   | image requires too many offsets, try increasing block size"})
    void qemusRefusalsWithQemusWords(long blockSize, long blocks, String message) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(good());
        b.putInt(128, (int) blockSize).putInt(132, (int) blocks);
        assertRefusedLikeQemu(b.array(), message);
    }

    @Test
    void decreasingAndHugeOffsets() throws IOException {
        ByteBuffer b = ByteBuffer.wrap(good());
        b.putLong(136 + 8 * 2, 0);
        assertRefusedLikeQemu(b.array(), "offsets not monotonically increasing at index 2, image file is corrupt");
        ByteBuffer c = ByteBuffer.wrap(good());
        c.putLong(136 + 8 * 4, 1L << 40);
        assertRefusedLikeQemu(c.array(), "invalid compressed block size at index 4, image file is corrupt");
    }

    /** Where QEMU reads zeroes past the end of the file, imago names what is cut off. */
    @Test
    void tablesAndBlocksPastTheEnd() throws IOException {
        byte[] whole = good();
        Path table = write(Arrays.copyOf(whole, 150));
        assertTrue(assertThrows(CorruptImageException.class, () -> open(table)).getMessage()
                .contains("the offsets table of 5 entries ends past the end of the file"));
        Path cut = write(Arrays.copyOf(whole, whole.length - 10));
        try (Image i = open(cut)) {
            i.read(ByteBuffer.allocate(4096), 0);
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(4096),
                    3 * 4096));
            assertTrue(e.getMessage().contains("block 3 lies past the end of the file"), e.getMessage());
        }
    }

    /** A block that inflates to more than the block size, or is not zlib, is refused, never overflows. */
    @Test
    void blocksThatDoNotInflateToTheBlockSize() throws IOException {
        byte[] big = CloopImages.image(CloopImages.V2, 8192, new byte[8192]);
        ByteBuffer b = ByteBuffer.wrap(big);
        b.putInt(128, 4096).putInt(132, 1); // one 4 KiB block whose stream holds 8 KiB
        try (Image i = open(write(b.array()))) {
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("block 0 does not inflate to exactly 4096 bytes"),
                    e.getMessage());
        }
        byte[] garbage = good();
        Arrays.fill(garbage, 136 + 8 * 5, 136 + 8 * 5 + 20, (byte) 0x55);
        try (Image i = open(write(garbage))) {
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("block 0 is not a zlib stream"), e.getMessage());
        }
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "convert", "-f", "cloop", "-O", "raw", dir.resolve("h" + (files - 1)
                + ".cloop"), "out.raw");
        assertEquals(1, q.status(), "qemu-img refuses it too: " + q.err());
    }

    private void assertRefusedLikeQemu(byte[] bytes, String message) throws IOException {
        Path image = write(bytes);
        ImageException e = assertThrows(ImageException.class, () -> open(image));
        assertTrue(e.getMessage().startsWith(image.toString()) && e.getMessage().contains(message), e.getMessage());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "info", "-f", "cloop", image);
        assertEquals(1, q.status());
        assertTrue(q.err().contains(message), q.err());
    }

    private static Image open(Path image) throws IOException {
        return Imago.opener().path(image).format("cloop").open();
    }

    private Path write(byte[] bytes) throws IOException {
        return Files.write(dir.resolve("h" + files++ + ".cloop"), bytes);
    }
}
