package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.Preallocation;
import imago.api.spi.Amender;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Power loss at every write and sync of an amendment ({@link Qcow2Amend}): each file a crash can leave (unsynced
 * writes dropped, some torn into sectors) is the old image or the new one — {@code qemu-img info} shows the old or
 * the new version and refcount width, {@code qemu-img compare} finds the guest content unchanged, and
 * {@code qemu-img check} finds no error and no leak.
 */
class Qcow2AmendCrashTest {
    @TempDir
    static Path dir;

    /** A v3 image with data, zero clusters with and without a host cluster, a compressed cluster, 2 MiB of tables. */
    private static byte[] original;

    @BeforeAll
    static void image() throws IOException {
        Qemu.require();
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "orig.qcow2", "8M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -P 1 0 256k", "-c", "write -z 16k 32k", "-c", "write -z 1M 64k",
                "-c", "write -c -P 2 2M 64k", "-c", "write -P 3 5M 12k", "-c", "write -z -u 5M 4k", "orig.qcow2");
        original = Files.readAllBytes(dir.resolve("orig.qcow2"));
    }

    @Test
    void aDowngradeLeavesTheOldImageOrTheNew() throws IOException {
        crashMatrix(Map.of("compat", "0.10"), "\"compat\": \"0.10\"", "\"compat\": \"1.1\"");
    }

    @Test
    void aNarrowerRefcountWidthLeavesTheOldImageOrTheNew() throws IOException {
        crashMatrix(Map.of("refcount_bits", "8"), "\"refcount-bits\": 8", "\"refcount-bits\": 16");
    }

    @Test
    void aWiderRefcountWidthLeavesTheOldImageOrTheNew() throws IOException {
        crashMatrix(Map.of("refcount_bits", "64"), "\"refcount-bits\": 64", "\"refcount-bits\": 16");
    }

    /**
     * Amends a copy of the original once per crash point and checks every file the crash leaves; returns how many
     * showed the new image (the others showed the old one).
     */
    private static int crashMatrix(Map<String, String> options, String newInfo, String oldInfo) throws IOException {
        int total = Integer.MAX_VALUE;
        int newOnes = 0;
        int oldOnes = 0;
        for (int crashAt = -1; crashAt < total; crashAt++) {
            Qcow2FaultTest.CrashStorage s = new Qcow2FaultTest.CrashStorage(original);
            s.crashAt(crashAt, 2);
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)),
                    s).writable(true).build()) {
                Amender amender = ((LayeredImage) image).layer().capability(Amender.class).orElseThrow();
                amender.amend(new LinkedHashMap<>(options), false, p -> { },
                        size -> image.resize(size, Preallocation.OFF));
            }
            if (s.crashFiles().isEmpty()) {
                total = s.points();
                assertTrue(total > 3, "the amendment writes and syncs");
                continue;
            }
            int variant = 0;
            for (byte[] crashed : s.crashFiles()) {
                String what = options + " crash at " + crashAt + " of " + total + ", variant " + variant++;
                Path file = dir.resolve("crash.qcow2");
                Files.write(file, crashed);
                Qemu.Output check = Qemu.run(dir, Qemu.img(), "check", "-f", "qcow2", file);
                assertEquals(0, check.status(), () -> what + ": " + check.out() + check.err());
                Qemu.Output compare = Qemu.run(dir, Qemu.img(), "compare", "-f", "qcow2", "-F", "qcow2", file,
                        dir.resolve("orig.qcow2"));
                assertEquals(0, compare.status(), () -> what + ": " + compare.out() + compare.err());
                String info = Qemu.ok(dir, Qemu.img(), "info", "--output=json", "-f", "qcow2", file);
                if (info.contains(newInfo)) {
                    newOnes++;
                } else {
                    assertTrue(info.contains(oldInfo), () -> what + ": neither old nor new:\n" + info);
                    oldOnes++;
                }
            }
        }
        assertTrue(newOnes > 0 && oldOnes > 0, options + ": " + oldOnes + " old, " + newOnes + " new");
        return total;
    }

    /** The amended image itself is what qemu-img makes of the same amendment, by content and check. */
    @Test
    void theAmendedImageIsClean() throws IOException {
        Qcow2FaultTest.CrashStorage s = new Qcow2FaultTest.CrashStorage(original);
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            Map<String, String> o = new LinkedHashMap<>();
            o.put("compat", "0.10");
            ((LayeredImage) image).layer().capability(Amender.class).orElseThrow().amend(o, false, p -> { },
                    size -> image.resize(size, Preallocation.OFF));
        }
        Path file = dir.resolve("amended.qcow2");
        Files.write(file, s.content());
        Qemu.ok(dir, Qemu.img(), "check", file);
        assertEquals(0, Qemu.run(dir, Qemu.img(), "compare", file, dir.resolve("orig.qcow2")).status());
        ByteBuffer version = ByteBuffer.wrap(s.content(), 4, 4);
        assertEquals(2, version.getInt());
    }
}
