package imago.cloop.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.GuestContent;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * imago reads cloop images as qemu-img does: built from the published layout, each is read by both, byte for byte
 * ({@code qemu-img convert -O raw}); version 2.0 images are probed by both, a version 3.0 script is read by both
 * with the format named; both refuse to write or create one.
 */
class CloopReadDifferentialTest {
    @TempDir
    Path dir;

    /** Guest content: runs of random bytes, zeroes and a repeated byte, compressible and not. */
    static byte[] content(int length, Random random) {
        return GuestContent.runs(length, random, r -> 1 + r.nextInt(20_000));
    }

    @ParameterizedTest
    @CsvSource({"V2, 65536, 7, 1", "V2, 512, 40, 2", "V3, 4096, 9, 3", "V2, 131072, 3, 4"})
    void readsWhatQemuReads(String version, int blockSize, int blocks, long seed) throws IOException {
        Random random = new Random(seed);
        byte[] content = content(blockSize * blocks, random);
        Path image = Files.write(dir.resolve("x.cloop"),
                CloopImages.image(version.equals("V2") ? CloopImages.V2 : CloopImages.V3, blockSize, content));
        Qemu.ok(dir, Qemu.img(), "convert", "-f", "cloop", "-O", "raw", image, "q.raw");
        byte[] qemu = Files.readAllBytes(dir.resolve("q.raw"));
        assertArrayEquals(content, qemu, "the builder's image holds the content (qemu-img's reading)");
        try (Image i = Imago.opener().path(image).format("cloop").open()) {
            GuestContent.assertReads(i, qemu, random, 40, 3 * blockSize);
        }
        boolean probed = Qemu.ok(dir, Qemu.img(), "info", image).contains("file format: cloop");
        assertEquals(version.equals("V2"), probed, "qemu-img probes only version 2.0");
        assertEquals(version.equals("V2") ? "cloop" : "raw", Imago.probe(image));
    }

    @Test
    void writingAndCreatingAreRefused() throws IOException {
        Path image = Files.write(dir.resolve("x.cloop"), CloopImages.image(CloopImages.V2, 512, new byte[1024]));
        assertThrows(ReadOnlyImageException.class, () -> Imago.opener().path(image).writable(true).open());
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Imago.create(dir.resolve("new.cloop"), "cloop", CreateOptions.ofSize(1 << 20)));
        assertEquals(Feature.CREATE, e.feature());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "create", "-f", "cloop", "new.cloop", "1M");
        assertTrue(q.err().endsWith(e.getMessage().substring(e.getMessage().indexOf("Format driver")) + "\n"), q.err());
    }
}
