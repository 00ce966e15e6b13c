package imago.raw.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Feature;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Raw's {@code offset} and {@code size} open options: the image is a window of the storage; reads, writes, zero
 * writes, discards and mappings are shifted by the offset, and nothing outside the window is ever changed; the
 * window is checked as QEMU 7.2's raw driver checks it.
 */
class RawWindowTest {
    private static final int STORAGE = 64 * 1024;
    private static final AtomicInteger NAMES = new AtomicInteger();

    private final RawFormatDriver driver = new RawFormatDriver();
    private MemoryStorage storage;
    private byte[] initial;

    @AfterEach
    void cleanUp() {
        if (storage != null) {
            MemoryStorage.delete(storage.name());
        }
    }

    /** A storage of random bytes, opened writable with {@code options}. */
    private LayeredImage open(Map<String, String> options) throws IOException {
        storage = MemoryStorage.create("raw-window-" + NAMES.incrementAndGet());
        initial = new byte[STORAGE];
        new Random(7).nextBytes(initial);
        storage.write(ByteBuffer.wrap(initial), 0);
        return LayeredImage.builder("raw", driver.open(storage, new OpenContext(true, false, options)), storage)
                .writable(true).build();
    }

    private byte[] storageBytes() throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) storage.size());
        storage.read(b, 0);
        return b.array();
    }

    @Test
    void writesStayInsideAFixedWindow() throws IOException {
        long offset = 4096;
        int size = 8192;
        try (LayeredImage image = open(Map.of("offset", "4096", "size", "8192"))) {
            assertEquals(size, image.size());
            ByteBuffer head = ByteBuffer.allocate(512);
            image.read(head, 0);
            assertArrayEquals(Arrays.copyOfRange(initial, 4096, 4608), head.array(), "guest 0 is storage 4096");
            byte[] data = new byte[size];
            Arrays.fill(data, (byte) 0x5a);
            image.write(ByteBuffer.wrap(data), 0);
            image.writeZeroes(1024, 1024);
            image.discard(2048, 512);
            // a request past the window is refused, and touches nothing
            assertThrows(IllegalArgumentException.class, () -> image.write(ByteBuffer.allocate(1024), size - 512));
            assertThrows(IllegalArgumentException.class, () -> image.writeZeroes(size, 512));
            List<Extent> extents = image.extents(0, size);
            assertEquals(size, extents.stream().mapToLong(Extent::length).sum());
            assertTrue(extents.stream().allMatch(e -> e.hostOffset().isPresent()
                    && e.hostOffset().getAsLong() == e.offset() + offset), extents::toString);
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(16384, Preallocation.OFF));
            assertEquals(Feature.RESIZE, e.feature());
            assertEquals("Cannot resize fixed-size raw disks", e.detail());
            image.flush();
            checkOutside(offset, size);
        }
    }

    /** The storage holds its first bytes up to {@code offset} and all after the window as they were. */
    private void checkOutside(long offset, int size) throws IOException {
        byte[] after = storageBytes();
        assertEquals(STORAGE, after.length, "the storage keeps its size");
        assertArrayEquals(Arrays.copyOfRange(initial, 0, (int) offset), Arrays.copyOfRange(after, 0, (int) offset),
                "before the window");
        assertArrayEquals(Arrays.copyOfRange(initial, (int) offset + size, STORAGE),
                Arrays.copyOfRange(after, (int) offset + size, STORAGE), "after the window");
        assertEquals(0x5a, after[(int) offset] & 0xff);
        assertEquals(0, after[(int) offset + 1024]);
    }

    @Test
    void anOffsetAloneIsTheRestOfTheStorage() throws IOException {
        try (LayeredImage image = open(Map.of("offset", "1000"))) {
            // 64 KiB - 1000 bytes in whole sectors: the tail past the storage's end reads as zeroes
            assertEquals(65024, image.size());
            ByteBuffer tail = ByteBuffer.allocate(512);
            image.read(tail, 64512);
            byte[] expected = new byte[512];
            System.arraycopy(initial, 65512, expected, 0, 24);
            assertArrayEquals(expected, tail.array(), "storage 65512.. then zeroes past its end");
            image.resize(2048, Preallocation.OFF);
            assertEquals(3048, storage.size(), "the storage ends the new size after the window's start");
            assertArrayEquals(Arrays.copyOfRange(initial, 0, 1000), Arrays.copyOfRange(storageBytes(), 0, 1000));
        }
    }

    @Test
    void windowsThatDoNotFitAreRefusedInQemuWords() throws IOException {
        assertRefused(Map.of("offset", "65537"),
                "Offset (65537) cannot be greater than size of the containing file (65536)");
        assertRefused(Map.of("offset", "18446744073709551615"),
                "Offset (18446744073709551615) cannot be greater than size of the containing file (65536)");
        assertRefused(Map.of("offset", "512", "size", "65536"), "The sum of offset (512) and size (65536) has to be "
                + "smaller or equal to the  actual size of the containing file (65536)");
        assertRefused(Map.of("size", "100"), "Specified size is not multiple of 512");
        assertRefused(Map.of("offset", "18446744073709551616"),
                "Value '18446744073709551616' is out of range for parameter 'offset'");
        assertRefused(Map.of("size", "1k"), "Parameter 'size' expects a non-negative number below 2^64\n"
                + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                + "and exabytes, respectively.");
        assertEquals(Set.of("offset", "size"), driver.openOptionNames());
    }

    private void assertRefused(Map<String, String> options, String message) throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(options).close());
        assertEquals(message, e.getMessage());
        assertArrayEquals(initial, storageBytes(), "a refused open changes nothing");
        MemoryStorage.delete(storage.name());
        storage = null;
    }
}
