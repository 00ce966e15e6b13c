package imago.testkit;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Repair;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The kit's plumbing for one test of one format: images on {@link TestStorages} disks, created and opened as users
 * do, and the workload images the crash and differential tests start from.
 *
 * @param format the format under test
 * @param traits what it can do
 * @param dir the test's temporary directory
 * @param test the test class's name, for messages and seeds
 */
record KitImages(String format, FormatTraits traits, Path dir, String test) {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /** The same plumbing for images of {@code otherFormat}. */
    KitImages of(String otherFormat) {
        return new KitImages(otherFormat, traits, dir, test);
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
     * A fresh image of {@code layout} for a workload (over a random backing disk if the layout says so), its
     * disks named after {@code what}: close it to forget them.
     *
     * @param name the image's disk
     * @param base its backing disk (present only for a backed layout)
     * @param below the backing disk's content, or null
     * @param start the image file as created
     * @param initial the guest content as created
     * @param workload the workload for it, drawn from the seed
     * @param seed the seed the backing content and workload come from
     */
    record Prepared(String name, String base, byte[] below, byte[] start, byte[] initial, CrashWorkload workload,
            long seed) implements AutoCloseable {
        @Override
        public void close() {
            TestStorages.remove(name);
            TestStorages.remove(base);
        }
    }

    /** Creates a {@link Prepared} image of {@code layout}; the seed is printed as {@code what}'s. */
    Prepared prepare(Layout layout, String what) throws IOException {
        long seed = PropertyRuns.seed(test + " " + layout + " " + what);
        String name = fresh(what.replace(' ', '-'));
        String base = name + "-base";
        long size = 6L * layout.granularity() + 1000;
        imago.api.CreateOptions.Builder options = layout.createOptions(size, traits.preallocations().getFirst());
        byte[] below = null;
        if (layout.backed()) {
            below = base(base, size, seed);
            options.backingFile(base).backingFormat("raw");
        }
        create(name, options.build());
        byte[] start = TestStorages.disk(name).content();
        byte[] initial;
        try (Image image = open(name, false)) {
            java.nio.ByteBuffer all = java.nio.ByteBuffer.allocate((int) image.size());
            image.read(all, 0);
            initial = all.array();
        }
        CrashWorkload workload = CrashWorkload.random(seed, 30, initial.length, layout.granularity(),
                resizable(layout) ? traits : null);
        return new Prepared(name, base, below, start, initial, workload, seed);
    }

    /**
     * The image's own check ({@code qemu-img check} in imago), if its format has one.
     *
     * @throws IOException if the check cannot read the storage
     */
    static Optional<CheckReport> check(Image image) throws IOException {
        return image.supports(Feature.CHECK) ? Optional.of(image.check(Repair.NONE)) : Optional.empty();
    }

    /** Whether images of {@code layout} can be resized, as a fresh one says. */
    boolean resizable(Layout layout) throws IOException {
        String name = fresh("ask");
        String base = name + "-base";
        try {
            imago.api.CreateOptions.Builder options = layout.createOptions(64 * 1024,
                    traits.preallocations().getFirst());
            if (layout.backed()) {
                base(base, 64 * 1024, 0);
                options.backingFile(base).backingFormat("raw");
            }
            create(name, options.build());
            try (Image image = open(name, true)) {
                return image.supports(Feature.RESIZE);
            }
        } finally {
            TestStorages.remove(name);
            TestStorages.remove(base);
        }
    }
}
