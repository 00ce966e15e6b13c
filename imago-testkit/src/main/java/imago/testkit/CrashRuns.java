package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.Image;
import imago.api.ImageException;
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
 * power loss is opened and checked. The files of an image of several (a vmdk descriptor and its extents) share one
 * power supply: each crashed image is made of one crash file of each, put back under their names.
 */
final class CrashRuns {
    /** Power-loss files made at each crash point (each drops and tears its own subset of the unsynced writes). */
    static final int VARIANTS = 2;

    private CrashRuns() {
    }

    /** A run of the workload: the image's disks (its main one first), and what its crash owed the guest (or null). */
    private record Run(List<FaultStorage> disks, CrashWorkload.Owed owed) {
    }

    static void run(KitImages images, Layout layout) throws IOException {
        String format = images.format();
        if (layout.writeOnce()) {
            runCutPass(images, layout);
            return;
        }
        try (KitImages.Prepared image = images.prepare(layout, "power loss")) {
            String crashed = image.name();
            int total = runOnce(images, image, -1).disks().getFirst().points();
            int budget = Integer.getInteger("imago.crashPoints", FormatConformanceTest.DEFAULT_CRASH_POINTS);
            List<Integer> points = new ArrayList<>();
            for (int i = 0; i < Math.min(total, budget); i++) {
                points.add(total <= budget ? i : (int) ((long) i * total / budget));
            }
            boolean qemu = Qemu.knowsFormat(format) && layout.qemuOpens();
            if (qemu && image.below() != null) {
                KitImages.copyOut(images.dir(), image.base(), image.base());
            }
            int files = 0;
            for (int point : points) {
                Run run = runOnce(images, image, point);
                CrashWorkload.Owed owed = run.owed();
                String what = images.test() + " " + layout + ", seed " + image.seed() + ", power loss at point "
                        + point + " of " + total;
                assertTrue(owed != null, () -> what + ": the crash point was not reached again");
                for (int variant = 0; variant < CrashRuns.VARIANTS; variant++) {
                    files++;
                    for (FaultStorage disk : run.disks()) {
                        TestStorages.put(disk.location().name(), disk.crashFiles().get(variant));
                    }
                    if (images.traits().recoversWhenWritable()) {
                        images.open(crashed, true).close(); // the repair (vhdx: log replay) a read-only open needs
                    }
                    try (Image opened = images.open(crashed, false)) {
                        CrashWorkload.assertKept(opened, owed, what);
                        Optional<CheckReport> report = KitImages.check(opened);
                        report.ifPresent(r -> assertTrue(r.failure().isEmpty() && r.checkErrors() == 0
                                && (r.corruptions() == 0 || images.traits().allowedAfterCrash(r)),
                                () -> what + ": the image's check finds damage: " + r));
                    }
                    TestStorages.assertClean(crashed);
                    if (qemu) {
                        Path copy = KitImages.copyOut(images.dir(), crashed, "crashed." + format);
                        QemuImage qemuImage = new QemuImage(copy, format, images.secret());
                        if (images.traits().recoversWhenWritable()) {
                            Qemu.Output repair = qemuImage.repair();
                            assertTrue(repair.status() == 0, () -> what + ": qemu-img check -r all status "
                                    + repair.status() + "\n" + repair.out() + repair.err());
                        }
                        Qemu.Output check = qemuImage.check();
                        assertTrue(check.status() == 0 || check.status() == 3 || check.status() == 63
                                || check.status() == 2 && images.traits().allowedAfterCrash(check.out(), check.err()),
                                () -> what + ": qemu-img check status " + check.status() + "\n" + check.out() + check.err());
                    }
                }
            }
            System.out.println(images.test() + " " + layout + ": " + points.size() + " power-loss points of " + total
                    + ", " + files + " crashed images of " + image.start().size() + " file(s) checked, 0 lost flushed "
                    + "bytes");
            assertTrue(total > 0, "the workload wrote nothing");
        }
    }

    /**
     * A write-once image whose one pass a power loss cut short. As in QEMU, nothing of its content is promised; what
     * the kit asks is that opening what is left and reading all of it either works or fails with a specific
     * {@link ImageException} — never an unchecked exception, another I/O error, or a size the pass never wrote.
     */
    private static void runCutPass(KitImages images, Layout layout) throws IOException {
        try (KitImages.Prepared image = images.prepare(layout, "power loss")) {
            byte[] content = WriteOncePass.content(image.seed(), image.initial().length, layout.granularity());
            int total = passOnce(images, image, content, layout.granularity(), -1).getFirst().points();
            int budget = Integer.getInteger("imago.crashPoints", FormatConformanceTest.DEFAULT_CRASH_POINTS);
            int readable = 0;
            int refused = 0;
            for (int i = 0; i < Math.min(total, budget); i++) {
                int point = total <= budget ? i : (int) ((long) i * total / budget);
                List<FaultStorage> disks = passOnce(images, image, content, layout.granularity(), point);
                String what = images.test() + " " + layout + ", seed " + image.seed() + ", power loss at point "
                        + point + " of " + total + " of the one pass";
                for (int variant = 0; variant < CrashRuns.VARIANTS; variant++) {
                    for (FaultStorage disk : disks) {
                        TestStorages.put(disk.location().name(), disk.crashFiles().get(variant));
                    }
                    try (Image opened = images.open(image.name(), false)) {
                        assertEquals(content.length, opened.size(), () -> what + ": the size");
                        ByteBuffer chunk = ByteBuffer.allocate(layout.granularity());
                        for (long at = 0; at < opened.size(); at += chunk.capacity()) {
                            opened.read(chunk.clear().limit((int) Math.min(chunk.capacity(), opened.size() - at)), at);
                        }
                        readable++;
                    } catch (IOException e) {
                        if (!(e instanceof ImageException)) {
                            throw new AssertionError(what + ": not a specific refusal", e);
                        }
                        refused++;
                    }
                    TestStorages.assertClean(image.name());
                }
            }
            System.out.println(images.test() + " " + layout + ": " + Math.min(total, budget) + " power-loss points of "
                    + total + " in the one pass: " + readable + " crashed images read, " + refused + " refused");
            assertTrue(total > 0, "the pass wrote nothing");
        }
    }

    /** Writes {@code content} in one pass into a fresh copy of the image, power failing at {@code point}. */
    private static List<FaultStorage> passOnce(KitImages images, KitImages.Prepared image, byte[] content,
            int granularity, int point)
            throws IOException {
        List<FaultStorage> disks = TestStorages.restore(image.start());
        disks.getFirst().crashAt(point, VARIANTS);
        try (Image writable = images.open(image.name(), true)) {
            WriteOncePass.write(writable, content, granularity);
        }
        TestStorages.assertClean(image.name());
        return disks;
    }

    /** Runs the workload on a fresh copy of the image, power failing at {@code point}. */
    private static Run runOnce(KitImages images, KitImages.Prepared image, int point) throws IOException {
        List<FaultStorage> disks = TestStorages.restore(image.start());
        FaultStorage disk = disks.getFirst();
        disk.crashAt(point, VARIANTS);
        CrashWorkload.Owed owed = image.workload().run(images.open(image.name(), true), disk, image.initial()).owed();
        TestStorages.assertClean(image.name());
        return new Run(disks, owed);
    }
}
