package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    private QemuDifferential() {
    }

    static void run(KitImages images, Layout layout) throws IOException {
        Qemu.require();
        String format = images.format();
        Assumptions.assumeTrue(Qemu.knowsFormat(format), () -> "qemu-img does not know " + format);
        Assumptions.assumeTrue(layout.qemuOpens(), () -> "qemu-img cannot open " + format + " images of " + layout);
        try (KitImages.Prepared image = images.prepare(layout, "qemu-img differential")) {
            Path dir = images.dir();
            if (image.below() != null) {
                KitImages.copyOut(dir, image.base(), image.base());
            }
            FaultStorage disk = TestStorages.disk(image.name());
            byte[] model;
            if (layout.writeOnce()) {
                model = WriteOncePass.content(image.seed(), image.initial().length, layout.granularity());
                try (Image opened = images.open(image.name(), true)) {
                    WriteOncePass.write(opened, model, layout.granularity());
                }
            } else {
                model = image.workload().run(images.open(image.name(), true), disk, image.initial()).content();
            }
            TestStorages.assertClean(image.name());
            Path file = KitImages.copyOut(dir, image.name(), image.name() + "." + format);
            Path raw = Files.write(dir.resolve(image.name() + "-model.raw"), model);
            String what = images.test() + " " + layout + ", seed " + image.seed();

            boolean imagoChecks;
            try (Image opened = ProbeApi.open(StorageLocation.file(file), format, false, images.secret())) {
                imagoChecks = KitImages.check(opened).isPresent();
            }
            QemuImage qemu = new QemuImage(file, format, images.secret());
            Qemu.Output check = qemu.check();
            assertEquals(imagoChecks ? 0 : 63, check.status(), () -> what + ": qemu-img check (imago "
                    + (imagoChecks ? "checks" : "has no check for") + " this format)\n" + check.out() + check.err());
            Qemu.Output compare = qemu.compare(raw);
            assertEquals(0, compare.status(), () -> what + ": qemu-img compare with the model\n" + compare.out()
                    + compare.err());

            List<String> qemuMap = new ArrayList<>();
            for (QemuMap.Entry e : qemu.map()) {
                qemuMap.add(e.start() + "+" + e.length() + " depth " + e.depth() + (e.present() ? " present" : "")
                        + (e.zero() ? " zero" : "") + (e.data() ? " data" : "")
                        + (e.offset() >= 0 ? " at " + e.offset() : ""));
            }
            List<String> imagoMap = imagoMap(file, format, images.secret());
            assertEquals(qemuMap, imagoMap, () -> what + ": imago's extents differ from qemu-img map");
            assertTrue(!qemuMap.isEmpty() || model.length == 0, () -> what + ": qemu-img map printed nothing");
        }
    }

    /** imago's extents of the file, merged as qemu-img map merges them, in the same notation. */
    private static List<String> imagoMap(Path file, String format, Layout.Secret secret) throws IOException {
        List<String> out = new ArrayList<>();
        try (Image image = ProbeApi.open(StorageLocation.file(file), format, false, secret)) {
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
