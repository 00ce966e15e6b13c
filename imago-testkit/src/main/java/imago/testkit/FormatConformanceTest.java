package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import imago.api.CheckReport;
import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.Repair;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.quicktheories.core.Gen;
import org.quicktheories.generators.Generate;

/**
 * The contract every format driver keeps, proved once for all of them (Lucene's {@code BasePostingsFormatTestCase}
 * idea): a format's test extends this class and says, in its constructor, which format, what it does that the
 * image cannot be asked ({@link FormatTraits}) and which {@link Layout layouts} to create:
 *
 * <pre>{@code
 * class Qcow2ConformanceTest extends FormatConformanceTest {
 *     Qcow2ConformanceTest() {
 *         super("qcow2", FormatTraits.of(Preallocation.OFF).sizesIn(512),
 *                 Layout.of("64 KiB clusters", 65536, ""), Layout.of("4 KiB clusters", 4096, "cluster_size=4096"));
 *     }
 * }
 * }</pre>
 *
 * <p>Images are created and opened as users do, with {@code imago.probe.Imago} (so the test's module needs
 * imago-probe and imago-storage-file on its test path), on {@link TestStorages} disks: every storage request goes
 * through an {@link AssertingStorage} (no use after close, no write through a read-only handle, requests in
 * bounds, no overlapping writes in flight, every handle closed with its image). An image may be several files (a vmdk
 * descriptor and its extent files): the files created with it are disks named as it names them, opened through the
 * open gate as in production, and checked, copied and crashed with it. For each layout:
 * <ul>
 * <li>random read/write/writeZeroes/discard/resize/flush/map/reopen sequences agree with a byte-array
 * {@link ImageModel}, and a clean close leaves an image its own check finds clean;</li>
 * <li>the optional capabilities are what {@link Image#supports} says;</li>
 * <li>power lost at every write or sync of a workload (a sample when there are more than
 * {@code -Dimago.crashPoints}, default {@value #DEFAULT_CRASH_POINTS}) leaves, in each of two files a
 * {@link FaultStorage} makes of it (unsynced writes dropped or torn), an image that opens, has a size the guest
 * saw since its last flush, reads every byte flushed before as flushed, and has no corruption for its own check
 * or qemu-img's;</li>
 * <li>probing: the format claims its own images (raw's weak fallback does, for a layout that
 * {@linkplain Layout#probingAsRaw() probes as raw}) and no other driver does (at most raw's weak fallback
 * answer), and it claims neither random bytes nor images of the other installed formats;</li>
 * <li>where qemu-img knows the format: images imago wrote pass {@code qemu-img check} (which supports checks
 * exactly when imago's does), equal the model for {@code qemu-img compare}, and map as {@code qemu-img map}
 * says.</li>
 * </ul>
 * An {@linkplain Layout#encrypted encrypted} layout's images are created and opened with its passphrase, as users
 * give one (a secret that an option names), and qemu-img gets it as {@code --object secret} with
 * {@code --image-opts}; a layout {@linkplain Layout#beyondQemu() beyond qemu-img} (LUKS2) skips qemu-img's checks.
 * A format whose unwritten bytes are not zeroes ({@link FormatTraits#readingUnwrittenBytesAsUndefined()}: LUKS) has
 * them held to whatever they first read.
 * A {@linkplain Layout#writingOnce() write-once} layout runs random operations against a model that knows which
 * writes it refuses, and is also written in one pass of its granules in a random order; its power-loss test cuts that
 * pass short and asks only that what is left opens and reads whole or is refused with a specific
 * {@link imago.api.ImageException}: see there what the kit checks of it.
 * Seeds are printed and replayed with {@code -Dimago.seed=N}; {@code -Dimago.examples=N} sets the number of
 * random sequences per layout (default {@value #DEFAULT_EXAMPLES}).
 */
public abstract class FormatConformanceTest {
    /** Random sequences per layout unless {@code imago.examples} says otherwise. */
    public static final int DEFAULT_EXAMPLES = 100;
    /** Crash points per layout unless {@code imago.crashPoints} says otherwise. */
    public static final int DEFAULT_CRASH_POINTS = 60;

    @TempDir
    Path dir;

    private final String format;
    private final FormatTraits traits;
    private final List<Layout> layouts;

    /**
     * The kit for {@code format}, which can do what {@code traits} say, on images of each of {@code layouts}.
     *
     * @throws IllegalArgumentException if no layout is given
     */
    protected FormatConformanceTest(String format, FormatTraits traits, Layout... layouts) {
        this.format = Objects.requireNonNull(format, "format");
        this.traits = Objects.requireNonNull(traits, "traits");
        this.layouts = List.of(layouts);
        if (this.layouts.isEmpty()) {
            throw new IllegalArgumentException("no layout for " + format);
        }
    }

    private KitImages images() {
        return new KitImages(format, traits, dir, getClass().getSimpleName(), null);
    }

    /** The kit's plumbing for images of {@code layout} (with its secret, if it is encrypted). */
    private KitImages images(Layout layout) {
        return images().of(layout);
    }

    private Stream<DynamicTest> perLayout(String test, LayoutTest body) {
        return layouts.stream().map(layout -> dynamicTest(format + ", " + layout + ": " + test,
                () -> body.run(layout)));
    }

    /** One test on one layout. */
    @FunctionalInterface
    private interface LayoutTest {
        void run(Layout layout) throws Exception;
    }

    // ------------------------------------------------------------------ model-based sequences

    @TestFactory
    Stream<DynamicTest> randomOperationSequencesMatchAByteArrayModel() {
        return perLayout("operation sequences", layout -> {
            if (layout.writeOnce()) {
                Gen<Integer> sizes = Generate.range(1, 5 * layout.granularity() + 1000);
                Gen<Long> seeds = Generate.longRange(0, Long.MAX_VALUE);
                PropertyRuns.check(getClass().getSimpleName() + " " + layout + " one pass", DEFAULT_EXAMPLES / 4,
                        sizes.zip(seeds, (size, seed) -> new long[] {size, seed}),
                        c -> runPass(layout, (int) c[0], c[1]), c -> List.of());
            }
            ImageOpGen gen = new ImageOpGen(5L * layout.granularity() + 1000, layout.granularity());
            Gen<Preallocation> modes = Generate.pick(traits.preallocations());
            Gen<ImageOp> resizes = gen.sizes().map(traits::acceptable).zip(modes, ImageOp.Resize::new);
            Gen<ImageOp> steps = gen.ops(images(layout).resizable(layout) ? resizes : null, true);
            if (layout.writeOnce()) {
                steps = steps.map(op -> wholeGranules(op, layout.granularity()));
            }
            Gen<ImageOpGen.Scenario> scenarios = gen.scenarios(40, modes, steps);
            if (traits.emptyRefused()) {
                // the format cannot hold 0 bytes: such scenarios start from one sector instead
                scenarios = scenarios.map(s -> s.initialSize() > 0 ? s
                        : new ImageOpGen.Scenario(512, s.preallocation(), s.ops()));
            }
            PropertyRuns.check(getClass().getSimpleName() + " " + layout, DEFAULT_EXAMPLES, scenarios,
                    s -> runScenario(layout, s), ImageOpGen.Scenario::withFewerSteps);
        });
    }

    /**
     * Half of the writes and zero writes (drawn from their own fields) made whole granules, which a write-once image
     * takes: the generator's writes seldom are.
     */
    private static ImageOp wholeGranules(ImageOp op, int granule) {
        return switch (op) {
            case ImageOp.Write w when (w.seed() & 1) == 0 -> new ImageOp.Write(w.offset() / granule * granule,
                    Math.max(1, (w.length() + granule - 1) / granule) * granule, w.seed());
            case ImageOp.WriteZeroes z when z.mayUnmap() -> new ImageOp.WriteZeroes(z.offset() / granule * granule,
                    Math.max(1, (z.length() + granule - 1) / granule) * granule, true);
            default -> op;
        };
    }

    private void runScenario(Layout layout, ImageOpGen.Scenario s) {
        KitImages images = images(layout);
        String name = images.fresh("model");
        String base = name + "-base";
        try {
            // an image over a backing file is created without preallocation (qcow2 allows both only with subclusters)
            CreateOptions.Builder options = layout.createOptions(s.initialSize(), layout.backed() ? Preallocation.OFF
                    : s.preallocation());
            byte[] below = new byte[0];
            if (layout.backed()) {
                below = images.base(layout, base, s.initialSize(), s.initialSize() * 31 + s.ops().size());
                KitImages.backedBy(options, layout, base);
            }
            images.create(layout, name, options.build());
            ImageModel model;
            Image image = images.open(name, true);
            try {
                long size = image.size();
                // a format may round the size up to its unit of a sector, never down
                assertTrue(size >= s.initialSize() && size <= (s.initialSize() + 511) / 512 * 512,
                        () -> "created with size " + s.initialSize() + ", the image has " + size);
                model = new ImageModel(Arrays.copyOf(below, (int) size), ImageModel.DiscardSemantics.ZEROES_OR_OLD,
                        traits::virtualSize);
                if (traits.shrinkRefusesPreallocation()) {
                    model.refusingPreallocatedShrinks();
                }
                if (traits.growsOnly()) {
                    model.refusingShrinks();
                }
                if (layout.writeOnce()) {
                    model.writingGranulesOnce(layout.granularity());
                }
                if (traits.unwrittenUndefined()) {
                    // a backing file's bytes are defined: only a new image's own and those a resize adds may not be
                    model.readingUnwrittenBytesAsUndefined(!layout.backed());
                }
                image = model.run(image, s.ops(), i -> images.reopen(i, name));
            } finally {
                image.close();
            }
            TestStorages.assertClean(name);
            try (Image reopened = images.open(name, false)) {
                model.checkContent(reopened, "reopened read-only after the last step");
                Optional<CheckReport> report = KitImages.check(reopened);
                report.ifPresent(r -> assertTrue(r.clean(), () -> "the image's check after a clean close: " + r));
            }
            TestStorages.assertClean(name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            TestStorages.remove(name);
            TestStorages.remove(base);
        }
    }

    /**
     * A write-once image of {@code size} bytes written in one pass with content from {@code seed} reads back
     * bit-exactly, whole and in sampled reads, once reopened; refuses overwrites; checks clean.
     */
    private void runPass(Layout layout, int size, long seed) {
        KitImages images = images(layout);
        String name = images.fresh("pass");
        try {
            images.create(layout, name, layout.createOptions(size, traits.preallocations().getFirst()).build());
            byte[] content;
            try (Image image = images.open(name, true)) {
                content = WriteOncePass.content(seed, Math.toIntExact(image.size()), layout.granularity());
                WriteOncePass.write(image, content, layout.granularity());
            }
            TestStorages.assertClean(name);
            SplittableRandom r = new SplittableRandom(seed);
            try (Image image = images.open(name, false)) {
                ImageModel model = new ImageModel(content, ImageModel.DiscardSemantics.ZEROES_OR_OLD,
                        traits::virtualSize);
                model.checkContent(image, "reopened after its one pass");
                for (int i = 0; i < 20; i++) {
                    int from = r.nextInt(content.length);
                    int length = 1 + r.nextInt(Math.min(content.length - from, 3 * layout.granularity()));
                    ByteBuffer part = ByteBuffer.allocate(length);
                    image.read(part, from);
                    assertTrue(Arrays.equals(part.array(), 0, length, content, from, from + length),
                            () -> "a read of " + length + " bytes at " + from + " after the pass");
                }
                Optional<CheckReport> report = KitImages.check(image);
                report.ifPresent(c -> assertTrue(c.clean(), () -> "the image's check after its one pass: " + c));
            }
            TestStorages.assertClean(name);
            try (Image image = images.open(name, true)) {
                WriteOncePass.assertRefused(image, 0, "a write into an image finished by its pass");
            }
            TestStorages.assertClean(name);
            try (Image image = images.open(name, false)) {
                ImageModel model = new ImageModel(content, ImageModel.DiscardSemantics.ZEROES_OR_OLD,
                        traits::virtualSize);
                model.checkContent(image, "after a refused write");
            }
            TestStorages.assertClean(name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            TestStorages.remove(name);
        }
    }

    /**
     * What {@link Image#supports} says is what the image does: a capability it lacks is refused with an
     * {@link UnsupportedFeatureException} naming it; check and resize, when it has them, work (and sizes off
     * the format's unit are refused or rounded up, as its traits say); an image of 0 bytes is refused at creation
     * if the traits say so.
     */
    @TestFactory
    Stream<DynamicTest> capabilitiesAreWhatTheImageSays() {
        return perLayout("capabilities", layout -> {
            KitImages images = images(layout);
            String name = images.fresh("capabilities");
            String base = name + "-base";
            try {
                if (traits.emptyRefused()) {
                    CreateOptions empty = layout.createOptions(0, traits.preallocations().getFirst()).build();
                    assertThrows(IllegalArgumentException.class, () -> images.create(name, empty),
                            "an image of 0 bytes is refused");
                }
                // a write-once image gets room for two granules, written out of order
                long created = layout.writeOnce() ? Math.max(64 * 1024, 2L * layout.granularity()) : 64 * 1024;
                CreateOptions.Builder options = layout.createOptions(created, traits.preallocations().getFirst());
                if (layout.backed()) {
                    images.base(layout, base, 64 * 1024, 1);
                    KitImages.backedBy(options, layout, base);
                }
                images.create(layout, name, options.build());
                try (Image image = images.open(name, true)) {
                    assertTrue(image.supports(Feature.RANDOM_WRITES), "the kit writes anywhere");
                    assertEquals(!layout.writeOnce(), image.supports(Feature.OVERWRITES),
                            layout.writeOnce() ? "the layout is write-once" : "the kit writes over what it wrote");
                    if (layout.writeOnce()) {
                        byte[] granule = new byte[layout.granularity()];
                        Arrays.fill(granule, (byte) 0x5a);
                        image.write(ByteBuffer.wrap(granule), layout.granularity());
                        WriteOncePass.assertRefused(image, layout.granularity(), "a write over a granule written");
                        image.write(ByteBuffer.wrap(granule), 0);
                    }
                    long size = image.size();
                    refusedUnlessSupported(image, Feature.CHECK, () -> image.check(Repair.NONE));
                    refusedUnlessSupported(image, Feature.INTERNAL_SNAPSHOTS, () -> image.createSnapshot("kit"));
                    refusedUnlessSupported(image, Feature.COMPRESSED_WRITES,
                            () -> image.writeCompressed(ByteBuffer.allocate(512), 0));
                    refusedUnlessSupported(image, Feature.BACKING_FILE, image::makeEmpty);
                    refusedUnlessSupported(image, Feature.RESIZE, () -> image.resize(2 * size, Preallocation.OFF));
                    if (image.supports(Feature.CHECK)) {
                        assertTrue(image.check(Repair.NONE).clean(), "a new image checks clean");
                    }
                    if (image.supports(Feature.RESIZE)) {
                        if (traits.roundsUp()) {
                            image.resize(100_001, Preallocation.OFF);
                            assertEquals(traits.virtualSize(100_001), image.size(), "100001 bytes rounded up");
                        } else if (traits.sizeUnit() > 1) {
                            assertThrows(IllegalArgumentException.class, () -> image.resize(100_001,
                                    Preallocation.OFF), "a size that is not a multiple of " + traits.sizeUnit());
                        }
                        image.resize(128 * 1024, Preallocation.OFF);
                        assertEquals(128 * 1024, image.size());
                        if (traits.growsOnly()) {
                            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                                    () -> image.resize(32 * 1024, Preallocation.OFF), "a shrink");
                            assertEquals(Feature.RESIZE, e.feature(), e::getMessage);
                            assertEquals(128 * 1024, image.size());
                        } else {
                            image.resize(32 * 1024, Preallocation.OFF);
                            assertEquals(32 * 1024, image.size());
                        }
                    } else {
                        assertEquals(size, image.size());
                    }
                }
                TestStorages.assertClean(name);
            } finally {
                TestStorages.remove(name);
                TestStorages.remove(base);
            }
        });
    }

    /** A request the image can fail. */
    @FunctionalInterface
    private interface Request {
        void run() throws IOException;
    }

    /** Unless {@code image} supports {@code feature}, {@code request} is refused as unsupported, naming it. */
    private static void refusedUnlessSupported(Image image, Feature feature, Request request) throws IOException {
        if (!image.supports(feature)) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class, request::run,
                    () -> image.format() + " says it has no " + feature + " but does not refuse it");
            assertEquals(feature, e.feature(), () -> "refused as " + e.feature() + ": " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------ crash injection

    @TestFactory
    Stream<DynamicTest> powerLossAtEveryWriteKeepsFlushedData() {
        return perLayout("power loss", layout -> CrashRuns.run(images(layout), layout));
    }

    // ------------------------------------------------------------------ negative probes

    /** The installed drivers by name. */
    private static Map<String, FormatDriver> drivers() {
        Map<String, FormatDriver> out = new java.util.TreeMap<>();
        ServiceLoader.load(FormatDriver.class).forEach(d -> out.put(d.name(), d));
        return out;
    }

    /** What {@code driver} answers for {@code bytes} as an image's start, as the probe module asks. */
    private static Confidence probe(FormatDriver driver, byte[] bytes) {
        ByteBuffer head = ByteBuffer.wrap(bytes, 0, Math.min(bytes.length, Math.max(0, driver.probeLength())))
                .slice().asReadOnlyBuffer();
        Confidence c = driver.probe(head, bytes.length);
        return c == null ? Confidence.NONE : c;
    }

    /** The most a driver may answer for bytes not its own: what it answers for zeroes, itself at most weak. */
    private static Confidence ceiling(FormatDriver driver) {
        Confidence zeroes = probe(driver, new byte[64 * 1024]);
        assertTrue(zeroes.compareTo(Confidence.WEAK) <= 0, () -> driver.name() + " claims all-zero bytes: " + zeroes);
        return zeroes;
    }

    /**
     * An image of {@code format} with some data, created and written through imago (made as {@code layout} says, if
     * not null); its main file's bytes.
     */
    private byte[] sampleImage(String imageFormat, Layout layout, CreateOptions options, long seed)
            throws IOException {
        String name = images().fresh("probe-" + imageFormat);
        try {
            KitImages images = layout == null ? images().of(imageFormat) : images(layout);
            if (layout == null) {
                images.create(name, options);
            } else {
                images.create(layout, name, options);
            }
            try (Image image = images.open(name, true)) {
                if (layout != null && layout.writeOnce()) {
                    WriteOncePass.write(image, WriteOncePass.content(seed, (int) image.size(),
                            layout.granularity()), layout.granularity());
                } else {
                    byte[] data = new byte[(int) Math.min(image.size(), 20_000)];
                    new SplittableRandom(seed).nextBytes(data);
                    image.write(ByteBuffer.wrap(data), image.size() - data.length);
                }
            }
            return TestStorages.disk(name).content();
        } finally {
            TestStorages.remove(name);
        }
    }

    @Test
    void ownImagesProbeAsThisFormatAndNoOther() throws IOException {
        Map<String, FormatDriver> drivers = drivers();
        assertTrue(drivers.containsKey(format), () -> format + " is not installed: " + drivers.keySet());
        for (Layout layout : layouts) {
            if (layout.backed()) {
                continue;
            }
            byte[] bytes = sampleImage(format, layout, layout.createOptions(100_000,
                    traits.preallocations().getFirst()).build(), 7);
            Path file = Files.write(dir.resolve("own.img"), bytes);
            String expected = layout.probesAsRaw() ? "raw" : format;
            assertEquals(expected, ProbeApi.probe(file), () -> layout + ": probing picks another format");
            for (FormatDriver other : drivers.values()) {
                if (!other.name().equals(format)) {
                    Confidence c = probe(other, bytes);
                    assertTrue(c.compareTo(ceiling(other)) <= 0, () -> other.name() + " claims a " + format
                            + " image (" + layout + "): " + c);
                }
            }
        }
    }

    @Test
    void randomBytesAndOtherFormatsImagesAreNotClaimed() throws IOException {
        Map<String, FormatDriver> drivers = drivers();
        FormatDriver mine = drivers.get(format);
        Confidence ceiling = ceiling(mine);
        SplittableRandom r = new SplittableRandom(PropertyRuns.seed(getClass().getSimpleName() + " random bytes"));
        for (int size : new int[] {0, 1, 100, 511, 512, 4096, 70_000}) {
            for (int i = 0; i < 20; i++) {
                byte[] bytes = new byte[size];
                r.nextBytes(bytes);
                Confidence c = probe(mine, bytes);
                assertTrue(c.compareTo(ceiling) <= 0, () -> format + " claims " + size + " random bytes ("
                        + Arrays.toString(Arrays.copyOf(bytes, Math.min(16, size))) + "...): " + c);
            }
        }
        List<String> others = new ArrayList<>();
        for (FormatDriver other : drivers.values()) {
            if (other.name().equals(format) || other.readOnly()) {
                continue; // read-only formats cannot be created here; their modules build images by hand
            }
            byte[] bytes;
            try {
                bytes = sampleImage(other.name(), null, CreateOptions.builder().size(100_000).build(), 11);
            } catch (IllegalArgumentException e) {
                continue; // a format whose images need options the kit cannot know (luks: a secret)
            }
            Confidence c = probe(mine, bytes);
            assertTrue(c.compareTo(ceiling) <= 0, () -> format + " claims a " + other.name() + " image: " + c);
            others.add(other.name());
        }
        assertTrue(!others.isEmpty(), "no other format is installed to compare with");
    }

    // ------------------------------------------------------------------ qemu-img differential

    @TestFactory
    Stream<DynamicTest> qemuImgAgreesWithImagesImagoWrote() {
        return perLayout("qemu-img check, compare and map", layout -> QemuDifferential.run(images(layout), layout));
    }
}
