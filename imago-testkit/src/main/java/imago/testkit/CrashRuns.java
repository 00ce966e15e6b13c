package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.CreateOptions;
import imago.api.Image;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The kit's crash test on one layout: a workload's run counts the points (writes and syncs) where power can fail,
 * then the workload runs again for each (sampled) point, and every file the {@link FaultStorage} makes of that
 * power loss is opened and checked.
 */
final class CrashRuns {
    private final String format;
    private final Layout layout;
    private final FormatTraits traits;
    private final Path dir;
    private final String test;

    CrashRuns(FormatConformanceTest test, Layout layout) {
        this.format = test.formatName();
        this.layout = layout;
        this.traits = test.formatTraits();
        this.dir = test.tempDir();
        this.test = test.getClass().getSimpleName();
    }

    void run() throws IOException {
        KitImages images = new KitImages(format);
        long seed = PropertyRuns.seed(test + " " + layout + " power loss");
        String name = images.fresh("crash");
        String base = name + "-base";
        String crashed = name + "-crashed";
        long size = 6L * layout.granularity() + 1000;
        try {
            CreateOptions.Builder options = layout.createOptions(size, traits.preallocations().getFirst());
            byte[] below = null;
            if (layout.backed()) {
                below = KitImages.base(base, size, seed);
                options.backingFile(base).backingFormat("raw");
            }
            images.create(name, options.build());
            byte[] start = TestStorages.disk(name).content();
            byte[] initial;
            try (Image image = images.open(name, false)) {
                ByteBuffer all = ByteBuffer.allocate((int) image.size());
                image.read(all, 0);
                initial = all.array();
            }
            CrashWorkload workload = CrashWorkload.random(seed, 30, initial.length, layout.granularity(),
                    traits);
            int total = runOnce(images, name, start, workload, initial, -1).disk().points();
            int budget = Integer.getInteger("imago.crashPoints", FormatConformanceTest.DEFAULT_CRASH_POINTS);
            List<Integer> points = new ArrayList<>();
            for (int i = 0; i < Math.min(total, budget); i++) {
                points.add(total <= budget ? i : (int) ((long) i * total / budget));
            }
            boolean qemu = Qemu.knowsFormat(format);
            if (qemu && below != null) {
                Files.write(dir.resolve(base), below);
            }
            int files = 0;
            for (int point : points) {
                Run run = runOnce(images, name, start, workload, initial, point);
                CrashWorkload.Owed owed = run.owed();
                String what = test + " " + layout + ", seed " + seed + ", power loss at point " + point + " of "
                        + total;
                assertTrue(owed != null, () -> what + ": the crash point was not reached again");
                for (byte[] file : run.disk().crashFiles()) {
                    files++;
                    TestStorages.put(crashed, file);
                    try (Image image = images.open(crashed, false)) {
                        CrashWorkload.assertKept(image, owed, what);
                        Optional<CheckReport> report = KitImages.check(image);
                        report.ifPresent(r -> assertTrue(r.failure().isEmpty() && r.checkErrors() == 0
                                && r.corruptions() == 0, () -> what + ": the image's check finds damage: " + r));
                    }
                    TestStorages.assertClean(crashed);
                    if (qemu) {
                        Path copy = Files.write(dir.resolve("crashed." + format), file);
                        Qemu.Output check = Qemu.check(copy, format);
                        boolean noChecks = check.status() == 63;
                        assertTrue(check.status() == 0 || check.status() == 3 || noChecks, () -> what
                                + ": qemu-img check status " + check.status() + "\n" + check.out() + check.err());
                    }
                }
            }
            System.out.println(test + " " + layout + ": " + points.size() + " power-loss points of " + total + ", "
                    + files + " crashed files checked, 0 lost flushed bytes");
            assertTrue(total > 0, "the workload wrote nothing");
        } finally {
            TestStorages.remove(name);
            TestStorages.remove(base);
            TestStorages.remove(crashed);
        }
    }

    /** A run of the workload: the disk, and what its crash owed the guest (null without one). */
    private record Run(FaultStorage disk, CrashWorkload.Owed owed) {
    }

    /** Runs the workload on a fresh copy of {@code start}, power failing at {@code point}. */
    private static Run runOnce(KitImages images, String name, byte[] start, CrashWorkload workload, byte[] initial,
            int point) throws IOException {
        FaultStorage disk = TestStorages.put(name, start);
        disk.crashAt(point, 1);
        CrashWorkload.Owed owed = workload.run(images.open(name, true), disk, initial).owed();
        TestStorages.assertClean(name);
        return new Run(disk, owed);
    }
}
