package imago.qed.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The backing file name rewritten in a QED header ({@code rebase}): where the name goes (QEMU's offset 64 in the
 * first sector; beside the old name otherwise, so that the header switches to a complete name), the feature bits,
 * and the refusal of a name the header clusters cannot hold, which leaves the header as it was.
 */
class QedBackingNameTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    private final String name = "qed-backing-" + NAMES.incrementAndGet();

    /** A 1 MiB image with 4 KiB clusters (one header cluster: 4032 bytes of room after the header). */
    private StorageLocation image() throws IOException {
        StorageLocation at = StorageLocation.memory(name);
        Imago.create(at, "qed", CreateOptions.builder().size(1 << 20).option("cluster_size", "4096").build());
        return at;
    }

    private static void rebase(StorageLocation at, String file, String format) throws IOException {
        try (Image image = Imago.opener().location(at).writable(true).noBacking().open()) {
            image.changeBackingFile(file, format);
        }
    }

    private QedHeader header() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        try (MemoryStorage s = MemoryStorage.open(name, false)) {
            s.read(b, 0);
            return QedHeader.parse(b.flip(), s.size(), name);
        }
    }

    private byte[] bytes(long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        try (MemoryStorage s = MemoryStorage.open(name, false)) {
            s.read(b, offset);
        }
        return b.array();
    }

    private static Optional<String> backingOf(StorageLocation at) throws IOException {
        try (Image image = Imago.opener().location(at).noBacking().open()) {
            return image.info().backingFilename();
        }
    }

    @Test
    void aShortNameGoesAfterTheHeaderWithItsFeatureBits() throws IOException {
        StorageLocation at = image();
        rebase(at, "base.raw", "raw");
        QedHeader h = header();
        assertEquals(QedHeader.BACKING_FILE | QedHeader.NO_PROBE, h.features());
        assertEquals(64, h.backingNameOffset());
        assertEquals(8, h.backingNameSize());
        assertArrayEquals("base.raw".getBytes(StandardCharsets.US_ASCII), bytes(64, 8));
        rebase(at, "other.qcow2", "qcow2");
        assertEquals(QedHeader.BACKING_FILE, header().features(), "only raw is recorded");
        assertEquals(Optional.of("other.qcow2"), backingOf(at));
        rebase(at, null, null);
        h = header();
        assertEquals(0, h.features());
        assertEquals(64, h.backingNameOffset());
        assertEquals(0, h.backingNameSize());
        assertEquals(Optional.empty(), backingOf(at));
    }

    @Test
    void aNamePastTheFirstSectorIsWrittenBesideTheOldOne() throws IOException {
        StorageLocation at = image();
        rebase(at, "a", "raw");
        String first = "d/".repeat(300) + "x.img";
        rebase(at, first, "raw");
        // the old name occupies byte 64: the new one starts after it
        assertEquals(65, header().backingNameOffset());
        assertEquals(Optional.of(first), backingOf(at));
        String second = "e/".repeat(400) + "y.img";
        rebase(at, second, null);
        assertEquals(65 + first.length(), header().backingNameOffset());
        assertEquals(Optional.of(second), backingOf(at));
        // no room beside the old name [670, 1475) in the 4 KiB header cluster: QEMU's one write at 64
        String third = "f/".repeat(1500) + "z.img";
        rebase(at, third, null);
        assertEquals(64, header().backingNameOffset());
        assertEquals(Optional.of(third), backingOf(at));
    }

    @Test
    void aNameTheHeaderCannotHoldIsRefusedAndChangesNothing() throws IOException {
        StorageLocation at = image();
        rebase(at, "base.raw", "raw");
        byte[] before = bytes(0, 4096);
        ImageLimitException e = assertThrows(ImageLimitException.class, () -> rebase(at, "n".repeat(4033), "raw"));
        assertEquals("No space left in the file header", e.detail());
        assertArrayEquals(before, bytes(0, 4096));
        rebase(at, "n".repeat(4032), "raw");
        assertEquals(4032, header().backingNameSize());
    }

    @Test
    void unknownCompatibleFeaturesRefuseANameButNotItsRemoval() throws IOException {
        StorageLocation at = image();
        try (MemoryStorage s = MemoryStorage.open(name, true)) {
            s.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 4), 24);
        }
        assertThrows(imago.api.UnsupportedFeatureException.class, () -> rebase(at, "base.raw", "raw"));
        rebase(at, null, null);
        assertEquals(4, header().compatFeatures());
    }
}
