package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Extent;
import imago.api.Image;
import imago.api.StorageLocation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * The kit's qemu-img differential test on one layout: an image imago wrote (a random workload) passes
 * {@code qemu-img check} exactly when imago's own check exists (status 63 otherwise), reads as the model for
 * {@code qemu-img compare}, and maps as {@code qemu-img map} says, extent for extent.
 */
final class QemuDifferential {
    private final String format;
    private final Layout layout;
    private final FormatTraits traits;
    private final Path dir;
    private final String test;

    QemuDifferential(FormatConformanceTest test, Layout layout) {
        this.format = test.formatName();
        this.layout = layout;
        this.traits = test.formatTraits();
        this.dir = test.tempDir();
        this.test = test.getClass().getSimpleName();
    }

    void run() throws IOException {
        Qemu.require();
        Assumptions.assumeTrue(Qemu.knowsFormat(format), () -> "qemu-img does not know " + format);
        KitImages images = new KitImages(format);
        long seed = PropertyRuns.seed(test + " " + layout + " qemu-img differential");
        String name = images.fresh("qemu");
        String base = name + "-base";
        long size = 6L * layout.granularity() + 1000;
        try {
            CreateOptions.Builder options = layout.createOptions(size, traits.preallocations().getFirst());
            if (layout.backed()) {
                Files.write(dir.resolve(base), KitImages.base(base, size, seed));
                options.backingFile(base).backingFormat("raw");
            }
            images.create(name, options.build());
            FaultStorage disk = TestStorages.disk(name);
            byte[] initial;
            try (Image image = images.open(name, false)) {
                java.nio.ByteBuffer all = java.nio.ByteBuffer.allocate((int) image.size());
                image.read(all, 0);
                initial = all.array();
            }
            CrashWorkload workload = CrashWorkload.random(seed, 30, initial.length, layout.granularity(),
                    traits);
            byte[] model = workload.run(images.open(name, true), disk, initial).content();
            Path file = Files.write(dir.resolve(name + "." + format), disk.content());
            Path raw = Files.write(dir.resolve(name + "-model.raw"), model);
            String what = test + " " + layout + ", seed " + seed;

            boolean imagoChecks;
            try (Image image = ProbeApi.open(StorageLocation.file(file), format, false)) {
                imagoChecks = KitImages.check(image).isPresent();
            }
            Qemu.Output check = Qemu.check(file, format);
            assertEquals(imagoChecks ? 0 : 63, check.status(), () -> what + ": qemu-img check (imago "
                    + (imagoChecks ? "checks" : "has no check for") + " this format)\n" + check.out() + check.err());
            Qemu.Output compare = Qemu.compare(file, format, raw, "raw");
            assertEquals(0, compare.status(), () -> what + ": qemu-img compare with the model\n" + compare.out()
                    + compare.err());

            List<String> qemuMap = new ArrayList<>();
            for (QemuMap.Entry e : Qemu.map(file, format)) {
                qemuMap.add(e.start() + "+" + e.length() + " depth " + e.depth() + (e.present() ? " present" : "")
                        + (e.zero() ? " zero" : "") + (e.data() ? " data" : "")
                        + (e.offset() >= 0 ? " at " + e.offset() : ""));
            }
            List<String> imagoMap = imagoMap(file);
            if (!qemuMap.equals(imagoMap) && traits.qemuMapDivergence().isPresent()) {
                Assumptions.abort(what + ": known divergence from qemu-img map (" + traits.qemuMapDivergence().get()
                        + "): qemu-img " + qemuMap + ", imago " + imagoMap);
            }
            assertEquals(qemuMap, imagoMap, () -> what + ": imago's extents differ from qemu-img map");
            assertTrue(!qemuMap.isEmpty() || model.length == 0, () -> what + ": qemu-img map printed nothing");
        } finally {
            TestStorages.remove(name);
            TestStorages.remove(base);
        }
    }

    /** imago's extents of the file, merged as qemu-img map merges them, in the same notation. */
    private List<String> imagoMap(Path file) throws IOException {
        List<String> out = new ArrayList<>();
        try (Image image = ProbeApi.open(StorageLocation.file(file), format, false)) {
            Extent run = null;
            List<Extent> all = new ArrayList<>(image.extents(0, image.size()));
            all.add(null);
            for (Extent e : all) {
                if (run != null && e != null && run.mergeableWith(e)) {
                    run = run.merge(e);
                    continue;
                }
                if (run != null) {
                    out.add(run.offset() + "+" + run.length() + " depth " + run.depth()
                            + (run.present() ? " present" : "") + (run.zero() ? " zero" : "")
                            + (run.data() ? " data" : "")
                            + (run.hostOffset().isPresent() ? " at " + run.hostOffset().getAsLong() : ""));
                }
                run = e;
            }
        }
        return out;
    }
}
