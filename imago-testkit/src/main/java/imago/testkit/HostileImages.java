package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * What a format's hostile-input tests ask of each damaged image: opened (read-only or writable) and read whole, it is
 * refused with one {@link ImageException} of the expected type that names the file (and, where asked, the offset of
 * the field at fault), in bounded time, without breaking the storage contract or leaving a handle open. The images
 * live on {@link TestStorages} disks, so every request the driver makes goes through an {@link AssertingStorage}.
 */
public final class HostileImages {
    /** How long opening and reading one damaged image may take. */
    public static final Duration TIME_BOUND = Duration.ofSeconds(10);

    private static final AtomicInteger NAMES = new AtomicInteger();

    private HostileImages() {
    }

    /**
     * The bytes of a new {@code format} image made with {@code options}, {@code data} written at offset 0 and the
     * image closed: a valid image for a test to damage.
     *
     * @throws IOException if imago cannot create, write or close it
     */
    public static byte[] created(String format, CreateOptions options, byte[] data) throws IOException {
        String name = format + "-valid-" + NAMES.incrementAndGet();
        try {
            ProbeApi.create(TestStorages.location(name), format, options);
            try (Image image = ProbeApi.open(TestStorages.location(name), format, true)) {
                image.write(ByteBuffer.wrap(data), 0);
            }
            TestStorages.assertClean(name);
            return TestStorages.disk(name).content();
        } finally {
            TestStorages.remove(name);
        }
    }

    /**
     * {@code bytes}, damaged in place by {@code damage} through a little-endian view of them (the byte order of
     * vdi's and parallels' headers), for a test to hand to {@link #refused}.
     */
    public static byte[] littleEndian(byte[] bytes, Consumer<ByteBuffer> damage) {
        damage.accept(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        return bytes;
    }

    /**
     * Opens {@code bytes} as {@code format} (writable or not), reads the whole image within {@link #TIME_BOUND} and
     * closes it; asserts that every storage handle the open took was used by the rules and closed.
     *
     * @return the guest content
     * @throws IOException if imago refuses the image
     */
    public static byte[] accepted(String format, byte[] bytes, boolean writable) throws IOException {
        String name = "accepted-" + format + "-" + NAMES.incrementAndGet();
        TestStorages.put(name, bytes);
        try {
            byte[] all = assertTimeoutPreemptively(TIME_BOUND, () -> {
                try (Image image = ProbeApi.open(TestStorages.location(name), format, writable)) {
                    return QemuReads.readAll(image);
                }
            });
            TestStorages.assertClean(name);
            return all;
        } finally {
            TestStorages.remove(name);
        }
    }

    /**
     * Opens {@code bytes} as {@code format} (writable or not) and reads the whole image; asserts that this throws a
     * {@code type} within {@link #TIME_BOUND} whose message names the file, and that every storage handle the open
     * took was used by the rules and closed.
     *
     * @return what was thrown, for the caller to check its message and offset
     */
    public static <T extends ImageException> T refused(String format, Class<T> type, byte[] bytes,
            boolean writable) {
        String name = "hostile-" + format + "-" + NAMES.incrementAndGet();
        TestStorages.put(name, bytes);
        try {
            T e = assertTimeoutPreemptively(TIME_BOUND, () -> assertThrows(type, () -> {
                try (Image image = ProbeApi.open(TestStorages.location(name), format, writable)) {
                    QemuReads.readAll(image);
                }
            }));
            assertTrue(e.getMessage().contains(name), () -> "names the file: " + e.getMessage());
            TestStorages.assertClean(name);
            return e;
        } finally {
            TestStorages.remove(name);
        }
    }

    /**
     * {@link #refused} read-only and writable, each time asserting that the exception gives the field's
     * {@code offset} and its message holds {@code words}.
     *
     * @return what the writable open threw
     */
    public static ImageException refusedAt(String format, Class<? extends ImageException> type, byte[] bytes,
            long offset, String words) {
        ImageException e = null;
        for (boolean writable : new boolean[] {false, true}) {
            ImageException thrown = refused(format, type, bytes, writable);
            assertEquals(offset, thrown.offset().orElse(-1), () -> "offset of " + thrown.getMessage());
            assertTrue(thrown.getMessage().contains(words), thrown::getMessage);
            e = thrown;
        }
        return e;
    }
}
