package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code imagotst} format of {@code imago.moduletests.plugin} is installed by nothing but this
 * module's {@code provides} (and its {@code META-INF/services} line): {@link Imago} probes, opens,
 * reads, writes and creates it with no change to any other module. And the raw fallback, with its
 * guard on sector 0, still works next to it.
 */
class ThirdPartyPluginTest {
    static final byte[] MAGIC = "IMAGOTST".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    /** A hand-made imagotst image: header for {@code size} bytes, then {@code data}. */
    static byte[] tstImage(long size, int version, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(512 + data.length).order(ByteOrder.BIG_ENDIAN);
        b.put(MAGIC).putLong(size).putInt(version);
        b.put(512, data);
        return b.array();
    }

    static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    static byte[] readAll(Image image) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(image.size()));
        image.read(b, 0);
        return b.array();
    }

    @Test
    void theFormatIsInstalled() {
        assertTrue(Imago.formats().contains("imagotst"), Imago.formats().toString());
        assertTrue(Imago.formats().contains("raw"), Imago.formats().toString());
    }

    @Test
    void probesAndReadsAHandMadeImage() throws IOException {
        byte[] data = pattern(8192, 7);
        Path p = Files.write(dir.resolve("hand.tst"), tstImage(data.length, 1, data));
        assertEquals("imagotst", Imago.probe(p));
        try (Image image = Imago.open(p)) {
            assertEquals("imagotst", image.format());
            assertEquals(8192, image.size());
            assertArrayEquals(data, readAll(image));
            Mapping.Data m = assertInstanceOf(Mapping.Data.class, image.mapping(100, 1000));
            assertEquals(100, m.offset());
            assertEquals(1000, m.length());
            assertEquals(612, m.hostOffset());
            assertEquals("imagotst", image.info().format());
            assertEquals(1, image.info().formatSpecific().get("version"));
        }
    }

    @Test
    void aShortFileReadsAsZeroesPastItsEnd() throws IOException {
        Path p = Files.write(dir.resolve("short.tst"), tstImage(4096, 1, pattern(100, 1)));
        try (Image image = Imago.open(p)) {
            byte[] all = readAll(image);
            assertArrayEquals(pattern(100, 1), Arrays.copyOf(all, 100));
            assertArrayEquals(new byte[4096 - 100], Arrays.copyOfRange(all, 100, 4096));
        }
    }

    @Test
    void createsWritesAndReopens() throws IOException {
        Path p = dir.resolve("new.tst");
        Imago.create(p, "imagotst", CreateOptions.ofSize(1 << 20));
        assertEquals(512 + (1 << 20), Files.size(p));
        byte[] data = pattern(3000, 3);
        // probed and writable: the format is not raw, so no guard applies to its first sector
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            assertEquals("imagotst", image.format());
            image.write(ByteBuffer.wrap(data), 0);
            image.write(ByteBuffer.wrap(data), (1 << 20) - data.length);
        }
        try (Image image = Imago.open(p)) {
            byte[] all = readAll(image);
            assertArrayEquals(data, Arrays.copyOf(all, data.length));
            assertArrayEquals(data, Arrays.copyOfRange(all, (1 << 20) - data.length, 1 << 20));
            assertEquals(0, all[data.length]);
        }
        byte[] file = Files.readAllBytes(p);
        assertArrayEquals(MAGIC, Arrays.copyOf(file, 8));
        assertArrayEquals(data, Arrays.copyOfRange(file, 512, 512 + data.length));
    }

    @Test
    void createRefusesWhatTheFormatCannotDo() {
        CreateOptions backed = CreateOptions.builder().size(4096).backingFile("base.raw").build();
        assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("b.tst"), "imagotst", backed));
        CreateOptions option = CreateOptions.builder().size(4096).option("cluster_size", "65536").build();
        assertThrows(IllegalArgumentException.class, () -> Imago.create(dir.resolve("o.tst"), "imagotst", option));
    }

    @Test
    void badHeadersAreSpecificErrors() throws IOException {
        Path version = Files.write(dir.resolve("v2.tst"), tstImage(4096, 2, new byte[0]));
        UnsupportedFeatureException v = assertThrows(UnsupportedFeatureException.class, () -> Imago.open(version));
        assertTrue(v.featureName().contains("version 2"), v.featureName());
        Path size = Files.write(dir.resolve("size.tst"), tstImage(-1, 1, new byte[0]));
        CorruptImageException s = assertThrows(CorruptImageException.class, () -> Imago.open(size));
        assertEquals(8, s.offset().orElseThrow());
        Path truncated = Files.write(dir.resolve("truncated.tst"), Arrays.copyOf(tstImage(4096, 1, new byte[0]), 12));
        CorruptImageException t = assertThrows(CorruptImageException.class, () -> Imago.open(truncated));
        assertTrue(t.getMessage().contains("truncated"), t.getMessage());
    }

    @Test
    void rawIsStillTheFallback() throws IOException {
        byte[] data = pattern(4096, 9);
        Path p = Files.write(dir.resolve("disk.raw"), data);
        assertEquals("raw", Imago.probe(p));
        try (Image image = Imago.open(p)) {
            assertEquals("raw", image.format());
            assertArrayEquals(data, readAll(image));
        }
    }

    /**
     * QEMU's rule (CVE-2008-2004): a raw image chosen by probing and opened writable refuses writes
     * that would make it probe as another format, here as the third-party one, which the probe module
     * has never heard of except through ServiceLoader.
     */
    @Test
    void aProbedRawImageRefusesToBecomeAThirdPartyImage() throws IOException {
        Path p = Files.write(dir.resolve("guest.raw"), new byte[4096]);
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            assertEquals("raw", image.format());
            ImageException e = assertThrows(ImageException.class, () -> image.write(ByteBuffer.wrap(MAGIC), 0));
            assertTrue(e.getMessage().contains("imagotst"), e.getMessage());
            // an unaligned write that completes the magic from bytes already there is refused too
            image.write(ByteBuffer.wrap(Arrays.copyOf(MAGIC, 4)), 0);
            assertThrows(ImageException.class, () -> image.write(ByteBuffer.wrap(MAGIC, 4, 4), 4));
            // the same bytes elsewhere, and other bytes in sector 0, are fine
            image.write(ByteBuffer.wrap(MAGIC), 512);
            image.write(ByteBuffer.wrap(pattern(512, 5)), 0);
        }
        byte[] file = Files.readAllBytes(p);
        assertArrayEquals(pattern(512, 5), Arrays.copyOf(file, 512));
        assertArrayEquals(MAGIC, Arrays.copyOfRange(file, 512, 520));
        assertEquals("raw", Imago.probe(p));
    }

    @Test
    void aProbedRawImageRefusesToBecomeAQcow2Image() throws IOException {
        Path p = Files.write(dir.resolve("guest.raw"), new byte[4096]);
        byte[] qcow2 = {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3};
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            assertThrows(ImageException.class, () -> image.write(ByteBuffer.wrap(qcow2), 0));
        }
        assertArrayEquals(new byte[4096], Files.readAllBytes(p));
    }

    /** Naming the format is the user's explicit consent: then the magic may be written. */
    @Test
    void anExplicitRawFormatMayWriteAnyMagic() throws IOException {
        Path p = Files.write(dir.resolve("explicit.raw"), new byte[4096]);
        try (Image image = Imago.opener().path(p).format("raw").writable(true).open()) {
            image.write(ByteBuffer.wrap(tstImage(1024, 1, new byte[0])), 0);
        }
        assertEquals("imagotst", Imago.probe(p));
    }
}
