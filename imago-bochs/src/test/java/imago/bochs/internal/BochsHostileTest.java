package imago.bochs.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Hostile headers and tables: each is one clear exception naming the file (and the field's offset), with QEMU's words
 * where QEMU refuses it too (checked against {@code qemu-img info -f bochs}); what QEMU reads as zeroes past the end
 * of the file, imago refuses.
 */
class BochsHostileTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "1048577 | 64   | 4096     | 4096       | Catalog size is too large",
        "1       | 64   | 256      | 4096       | Extent size must be at least 512",
        "1       | 64   | 3000     | 4096       | Extent size 3000 is not a power of two",
        "1       | 4096 | 16777216 | 4096       | Extent size 16777216 is too large",
        "2       | 1    | 4096     | 1048576    | Catalog size is too small for this disk size",
        "1       | 1    | 4096     | -1         | Catalog size is too small for this disk size"})
    void qemusRefusalsWithQemusWords(int catalog, int bitmap, int extent, long disk, String message)
            throws IOException {
        ByteBuffer b = ByteBuffer.allocate(512 + 4 * Math.min(catalog, 4)).order(ByteOrder.LITTLE_ENDIAN);
        b.put(BochsImages.header(BochsHeader.VERSION_2, catalog, bitmap, extent, disk));
        Path image = write(b.array());
        ImageException e = assertThrows(ImageException.class, () -> Imago.open(image));
        assertTrue(e instanceof CorruptImageException || e instanceof ImageLimitException, e.toString());
        assertTrue(e.getMessage().startsWith(image.toString()) && e.getMessage().contains(message), e.getMessage());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "info", "-f", "bochs", image);
        assertEquals(1, q.status());
        assertTrue(q.err().contains(message), q.err());
    }

    @Test
    void notBochsWithTheFormatNamed() throws IOException {
        byte[] bytes = BochsImages.image(BochsHeader.VERSION_2, 4096, new byte[4096], new Random(1));
        bytes[32] = 'X';
        Path image = write(bytes);
        ImageException e = assertThrows(CorruptImageException.class,
                () -> Imago.opener().path(image).format("bochs").open());
        assertTrue(e.getMessage().contains("Image not in Bochs format"), e.getMessage());
        assertTrue(Qemu.run(dir, Qemu.img(), "info", "-f", "bochs", image).err().contains("Image not in Bochs format"));
    }

    /** QEMU reads zeroes past the end of the file; imago says which table or block is cut off. */
    @Test
    void tablesAndBlocksPastTheEnd() throws IOException {
        byte[] content = BochsImages.content(16 * 512, new Random(3));
        Arrays.fill(content, (byte) 1);
        byte[] whole = BochsImages.image(BochsHeader.VERSION_2, 4096, content, new Random(3));
        // the catalog cut off
        assertRefused(Arrays.copyOf(whole, 514), "the catalog of 2 entries ends past the end of the file");
        // a block's sectors cut off
        Path cut = write(Arrays.copyOf(whole, whole.length - 512));
        try (Image i = Imago.open(cut)) {
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(8192), 0));
            assertTrue(e.getMessage().contains("past the end of the file"), e.getMessage());
        }
        // a catalog entry pointing far past the end
        ByteBuffer far = ByteBuffer.wrap(whole.clone()).order(ByteOrder.LITTLE_ENDIAN);
        far.putInt(512, 0x7fff_fff0);
        try (Image i = Imago.open(write(far.array()))) {
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("bitmap of extent 0 lies past the end of the file"), e.getMessage());
        }
        // a bitmap too small for its extent (QEMU would read the extent's first sectors as bitmap bits)
        ByteBuffer small = ByteBuffer.wrap(whole.clone()).order(ByteOrder.LITTLE_ENDIAN);
        small.putInt(76, 0);
        assertRefused(small.array(), "bitmap of 0 bytes cannot cover an extent of 8 sectors");
    }

    private void assertRefused(byte[] bytes, String message) throws IOException {
        Path image = write(bytes);
        ImageException e = assertThrows(CorruptImageException.class, () -> Imago.open(image));
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    private int files;

    private Path write(byte[] bytes) throws IOException {
        Path p = dir.resolve("h" + files++ + ".img");
        Files.write(p, bytes);
        return p;
    }
}
