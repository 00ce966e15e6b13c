package imago.testkit;

import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Repair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;
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
 * @param secret the secret images are created and opened with (an encrypted layout's), or {@code null}
 */
record KitImages(String format, FormatTraits traits, Path dir, String test, Layout.Secret secret) {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /** The same plumbing for images of {@code otherFormat}. */
    KitImages of(String otherFormat) {
        return new KitImages(otherFormat, traits, dir, test, null);
    }

    /** The same plumbing for images of {@code layout}: with its secret, if it is encrypted. */
    KitImages of(Layout layout) {
        return new KitImages(format, traits, dir, test, layout.secret());
    }

    /** A disk name no other image of this JVM has. */
    String fresh(String what) {
        return format + "-" + what + "-" + NAMES.incrementAndGet();
    }

    /** Opens the image on disk {@code name} with this format (no probing), its backing file through the gate. */
    Image open(String name, boolean writable) throws IOException {
        return ProbeApi.open(TestStorages.location(name), format, writable, secret);
    }

    /** Creates an image of this format on disk {@code name}, as {@code Imago.create} does. */
    void create(String name, imago.api.CreateOptions options) throws IOException {
        Set<String> before = TestStorages.names();
        ProbeApi.create(TestStorages.location(name), format, options);
        TestStorages.adopt(name, before);
        TestStorages.assertClean(name);
    }

    /** Creates an image of {@code layout} on disk {@code name}, by its creator or as {@code Imago.create} does. */
    void create(Layout layout, String name, imago.api.CreateOptions options) throws IOException {
        if (layout.creator() == null) {
            create(name, options);
            return;
        }
        Set<String> before = TestStorages.names();
        layout.creator().create(name, options);
        TestStorages.adopt(name, before);
        TestStorages.assertClean(name);
    }

    /**
     * Copies every disk of the image on disk {@code name} into {@code dir}, each under its disk name but the main
     * one, which becomes {@code mainFile}: its extent files are then next to it under the names it gives them.
     *
     * @return the main file
     */
    static Path copyOut(Path dir, String name, String mainFile) throws IOException {
        Path main = null;
        for (Map.Entry<String, byte[]> e : TestStorages.contents(name).entrySet()) {
            Path file = Files.write(dir.resolve(main == null ? mainFile : e.getKey()), e.getValue());
            main = main == null ? file : main;
        }
        return main;
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
     * The backing file {@code name} of {@code layout}'s images: {@code size} random bytes (from {@code seed}), raw or
     * in an image of the layout's backing format (created with no option); returns what the guest reads of it.
     */
    byte[] base(Layout layout, String name, long size, long seed) throws IOException {
        if (layout.backingFormat().equals("raw")) {
            return base(name, size, seed);
        }
        byte[] content = new byte[Math.toIntExact(size)];
        new SplittableRandom(seed).nextBytes(content);
        KitImages images = of(layout.backingFormat());
        images.create(name, imago.api.CreateOptions.builder().size(size).build());
        try (Image image = images.open(name, true)) {
            image.write(ByteBuffer.wrap(content), 0);
            content = Arrays.copyOf(content, Math.toIntExact(image.size()));
        }
        TestStorages.assertClean(name);
        return content;
    }

    /** Gives {@code options} the backing file {@code base} of {@code layout}'s backing format. */
    static imago.api.CreateOptions.Builder backedBy(imago.api.CreateOptions.Builder options, Layout layout,
            String base) {
        return options.backingFile(base).backingFormat(layout.backingFormat());
    }

    /**
     * A fresh image of {@code layout} for a workload (over a random backing disk if the layout says so), its
     * disks named after {@code what}: close it to forget them.
     *
     * @param name the image's disk
     * @param base its backing disk (present only for a backed layout)
     * @param below what the guest reads of the backing file, or null
     * @param start the image's files as created, by disk name (its main disk first)
     * @param initial the guest content as created
     * @param workload the workload for it, drawn from the seed
     * @param seed the seed the backing content and workload come from
     */
    record Prepared(String name, String base, byte[] below, SequencedMap<String, byte[]> start, byte[] initial,
            CrashWorkload workload, long seed) implements AutoCloseable {
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
            below = base(layout, base, size, seed);
            backedBy(options, layout, base);
        }
        create(layout, name, options.build());
        SequencedMap<String, byte[]> start = TestStorages.contents(name);
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
                base(layout, base, 64 * 1024, 0);
                backedBy(options, layout, base);
            }
            create(layout, name, options.build());
            try (Image image = open(name, true)) {
                return image.supports(Feature.RESIZE);
            }
        } finally {
            TestStorages.remove(name);
            TestStorages.remove(base);
        }
    }
}
