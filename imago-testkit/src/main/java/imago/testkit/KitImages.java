package imago.testkit;

import imago.api.CheckReport;
import imago.api.Image;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import java.io.IOException;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/** Images of one format on {@link TestStorages} disks, opened as users open them: the kit's plumbing. */
final class KitImages {
    private static final AtomicInteger NAMES = new AtomicInteger();

    private final String format;

    KitImages(String format) {
        this.format = format;
    }

    /** A disk name no other image of this JVM has. */
    String fresh(String what) {
        return format + "-" + what + "-" + NAMES.incrementAndGet();
    }

    /** Opens the image on disk {@code name} with this format (no probing), its backing file through the gate. */
    Image open(String name, boolean writable) throws IOException {
        return ProbeApi.open(TestStorages.location(name), format, writable);
    }

    /** Creates an image of this format on disk {@code name}, as {@code Imago.create} does. */
    void create(String name, imago.api.CreateOptions options) throws IOException {
        ProbeApi.create(TestStorages.location(name), format, options);
        TestStorages.assertClean(name);
    }

    /** Closes {@code image} on disk {@code name}, checks that it let go of its storage, and opens it again. */
    Image reopen(Image image, String name) throws IOException {
        image.close();
        TestStorages.assertClean(name);
        return open(name, true);
    }

    /** A raw backing disk {@code name} of {@code size} random bytes (from {@code seed}); returns its content. */
    static byte[] base(String name, long size, long seed) {
        byte[] content = new byte[Math.toIntExact(size)];
        new SplittableRandom(seed).nextBytes(content);
        TestStorages.put(name, content);
        return content;
    }

    /**
     * The image's own check ({@code qemu-img check} in imago), if its format has one.
     *
     * @throws IOException if the check cannot read the storage
     */
    static Optional<CheckReport> check(Image image) throws IOException {
        try {
            return Optional.of(image.check(Repair.NONE));
        } catch (UnsupportedFeatureException e) {
            if (!e.feature().equals("check")) {
                throw e;
            }
            return Optional.empty();
        }
    }
}
