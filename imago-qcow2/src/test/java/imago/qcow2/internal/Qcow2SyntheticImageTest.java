package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.Mapping;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Dependency;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * Hand-built images (no qemu needed): 512-byte clusters, header in cluster 0, refcount table in 1,
 * L1 in 2, L2 in 3, data in 4.
 */
class Qcow2SyntheticImageTest {
    static final int CS = 512;

    /** Guest cluster 0 → data (0x5a), 1 unallocated, 2 zero, 3 → data at cluster 5 (0x6b), rest unallocated. */
    static byte[] image() {
        ByteBuffer b = ByteBuffer.allocate(6 * CS);
        b.putInt(0, Qcow2Header.MAGIC).putInt(4, 3);
        b.putInt(20, 9).putLong(24, 8 * CS);
        b.putInt(36, 1).putLong(40, 2 * CS);
        b.putLong(48, CS).putInt(56, 1);
        b.putInt(96, 4).putInt(100, 112);
        // a backing format extension and a backing name after it
        b.putInt(112, Qcow2Header.EXT_BACKING_FORMAT).putInt(116, 3).put(120, "raw".getBytes(StandardCharsets.US_ASCII));
        b.putInt(128, 0).putInt(132, 0);
        b.putLong(8, 200).putInt(16, 8).put(200, "base.img".getBytes(StandardCharsets.US_ASCII));
        b.putLong(2 * CS, (1L << 63) | 3 * CS);
        b.putLong(3 * CS, (1L << 63) | 4 * CS);
        b.putLong(3 * CS + 16, 1L);
        b.putLong(3 * CS + 24, (1L << 63) | 5 * CS);
        Arrays.fill(b.array(), 4 * CS, 5 * CS, (byte) 0x5a);
        Arrays.fill(b.array(), 5 * CS, 6 * CS, (byte) 0x6b);
        return b.array();
    }

    static Qcow2Instance open(byte[] bytes) throws IOException {
        return (Qcow2Instance) new Qcow2FormatDriver().open(new BytesStorage("synthetic.qcow2", bytes),
                OpenContext.of(false));
    }

    @Test
    void parsesAndMaps() throws IOException {
        Qcow2Instance layer = open(image());
        Qcow2Header h = layer.header();
        assertEquals(3, h.version());
        assertEquals(Optional.of("base.img"), h.backingFile());
        assertEquals(List.of(new Dependency.BackingFile("base.img", Optional.of("raw"))), layer.dependencies());
        assertEquals(8 * CS, layer.size());
        Mapping m0 = layer.mapping(0, 8 * CS);
        assertTrue(m0 instanceof Mapping.Data d && d.hostOffset() == 4 * CS && d.length() == CS, m0.toString());
        assertEquals(new Mapping.Unallocated(CS, CS), layer.mapping(CS, 8 * CS));
        assertEquals(Mapping.Zero.unreserved(2 * CS, CS), layer.mapping(2 * CS, 8 * CS));
        Mapping m3 = layer.mapping(3 * CS + 10, 8 * CS);
        assertTrue(m3 instanceof Mapping.Data d && d.hostOffset() == 5 * CS + 10 && d.length() == CS - 10,
                m3.toString());
        assertEquals(new Mapping.Unallocated(4 * CS, 4 * CS), layer.mapping(4 * CS, 8 * CS));
        assertEquals(new Mapping.EndOfImage(8 * CS), layer.mapping(8 * CS, 1));
    }

    @Test
    void readsThroughTheGenericPath() throws IOException {
        byte[] bytes = image();
        Qcow2Instance layer = open(bytes);
        try (Image img = LayeredImage.builder("qcow2", layer, new BytesStorage("synthetic.qcow2", bytes)).build()) {
            byte[] all = new byte[8 * CS];
            img.read(ByteBuffer.wrap(all), 0);
            byte[] expected = new byte[8 * CS];
            Arrays.fill(expected, 0, CS, (byte) 0x5a);
            Arrays.fill(expected, 3 * CS, 4 * CS, (byte) 0x6b);
            assertArrayEquals(expected, all);
        }
    }

    @Test
    void validatesFields() throws IOException {
        assertThrows(ImageLimitException.class, () -> open(with(b -> b.putInt(36, 5_000_000))));
        assertThrows(CorruptImageException.class, () -> open(with(b -> b.putLong(24, 1L << 20))));
        assertThrows(UnsupportedFeatureException.class, () -> open(with(b -> b.putLong(72, 1L << 40))));
        assertThrows(CorruptImageException.class, () -> open(with(b -> b.putInt(116, 16))));
        assertThrows(CorruptImageException.class, () -> open(with(b -> b.putLong(8, 100))));
        // an L2 table past the end of a file cut short reads as zeroes, as QEMU reads it: nothing allocated there
        assertEquals(Mapping.Unallocated.class, open(Arrays.copyOf(image(), 3 * CS)).mapping(0, 1).getClass());
    }

    @Test
    void largeVirtualSizesDoNotAllocate() throws IOException {
        // 2^40 bytes need 2^25 L1 entries with 512-byte clusters: the one-entry table is too small
        assertThrows(CorruptImageException.class, () -> open(with(b -> b.putLong(24, 1L << 40))));
        // 2^62 bytes need more L1 entries than QEMU ever allows: refused from the header
        assertThrows(ImageLimitException.class, () -> open(with(b -> b.putLong(24, 1L << 62))));
        // the largest image one 512-byte cluster of L1 entries (64) can describe: 64 * 64 * 512 = 2 MiB
        Qcow2Instance layer = open(with(b -> b.putInt(36, 64).putLong(24, 2L << 20)));
        assertEquals(new Mapping.Unallocated(4 * CS, (2L << 20) - 4 * CS), layer.mapping(4 * CS, Long.MAX_VALUE));
    }

    /** QEMU counts the image in whole sectors: a header size that is not a multiple of 512 is rounded down. */
    @Test
    void aHeaderSizeInsideASectorIsRoundedDown() throws IOException {
        Qcow2Instance layer = open(with(b -> b.putLong(24, 3 * CS + 100)));
        assertEquals(3 * CS + 100, layer.header().size(), "the header keeps what it says");
        assertEquals(3 * CS, layer.size());
        assertEquals(new Mapping.EndOfImage(3 * CS), layer.mapping(3 * CS, 1));
        assertEquals(0, open(with(b -> b.putLong(24, 511))).size());
        assertEquals(8 * CS, open(with(b -> b.putLong(24, 8 * CS + 511))).size());
    }

    private static byte[] with(java.util.function.Consumer<ByteBuffer> change) {
        byte[] b = image();
        change.accept(ByteBuffer.wrap(b));
        return b;
    }
}
