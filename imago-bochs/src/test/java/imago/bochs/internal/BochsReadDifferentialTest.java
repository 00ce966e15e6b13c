package imago.bochs.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Extent;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.GuestContent;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * imago reads bochs images as qemu-img does: built from the published layout, each is read by both, byte for byte
 * ({@code qemu-img convert -O raw}); both probe it, give it the same size, and refuse to write or create it.
 */
class BochsReadDifferentialTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"2, 4096, 1000, 1", "1, 4096, 600, 2", "2, 512, 130, 3", "2, 32768, 1500, 4", "1, 65536, 257, 5"})
    void readsWhatQemuReads(int version, int extent, int sectors, long seed) throws IOException {
        Random random = new Random(seed);
        byte[] content = BochsImages.content(sectors * 512, random);
        Path image = dir.resolve("x.img");
        Files.write(image, BochsImages.image(version == 1 ? BochsHeader.VERSION_1 : BochsHeader.VERSION_2, extent,
                content, random));
        Qemu.ok(dir, Qemu.img(), "convert", "-O", "raw", image, "q.raw");
        byte[] qemu = Files.readAllBytes(dir.resolve("q.raw"));
        assertArrayEquals(content, qemu, "the builder's image holds the content (qemu-img's reading)");
        try (Image i = Imago.open(image)) {
            assertEquals("bochs", i.format());
            // odd offsets and lengths across sectors and extents
            GuestContent.assertReads(i, qemu, random, 50, 3 * extent);
            long mapped = 0;
            for (Extent e : i.extents(0, i.size())) {
                assertEquals(mapped, e.offset());
                mapped += e.length();
            }
            assertEquals(i.size(), mapped, "the map covers the image");
        }
        assertTrue(Qemu.ok(dir, Qemu.img(), "info", image).contains("file format: bochs"));
    }

    /** The virtual size is the disk size's whole sectors, as in QEMU. */
    @Test
    void aDiskSizeInPartSectorsIsRoundedDown() throws IOException {
        byte[] content = new byte[8 * 512];
        Path image = dir.resolve("odd.img");
        ByteBuffer bytes = ByteBuffer.wrap(BochsImages.image(BochsHeader.VERSION_2, 4096, content, new Random(7)))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(88, 8 * 512 - 100);
        Files.write(image, bytes.array());
        String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", image);
        try (Image i = Imago.open(image)) {
            assertEquals(7 * 512, i.size());
            assertTrue(info.contains("\"virtual-size\": " + (7 * 512)), info);
        }
    }

    @Test
    void writingAndCreatingAreRefused() throws IOException {
        Path image = dir.resolve("x.img");
        Files.write(image, BochsImages.image(BochsHeader.VERSION_2, 4096, new byte[4096], new Random(1)));
        assertThrows(ReadOnlyImageException.class, () -> Imago.opener().path(image).writable(true).open());
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Imago.create(dir.resolve("new.img"), "bochs", CreateOptions.ofSize(1 << 20)));
        assertEquals(Feature.CREATE, e.feature());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "create", "-f", "bochs", "new.img", "1M");
        assertTrue(q.err().endsWith(e.getMessage().substring(e.getMessage().indexOf("Format driver")) + "\n"), q.err());
        assertTrue(Files.notExists(dir.resolve("new.img")));
    }
}
