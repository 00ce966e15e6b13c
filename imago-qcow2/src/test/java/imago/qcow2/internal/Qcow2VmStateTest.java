package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.ReadOnlyImageException;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.testkit.FaultStorage;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The VM state area through the library ({@link Image#vmState()}): refusals before anything changes (QEMU's L1
 * limit, read-only images), the same bytes as qemu-io's {@code write -b} in an encrypted image (read back both
 * ways), and power loss at every (sampled) write of a workload of VM state writes that grow the L1 table, guest
 * writes and flushes: the file that could be left is never corrupt for {@code qemu-img check} and keeps every
 * flushed byte of the guest disk and of the area. (The qemu-io differential tests of {@code read -b} and
 * {@code write -b} are imago-cli's {@code VmStateDifferentialTest}.)
 */
class Qcow2VmStateTest {
    @TempDir
    Path dir;

    private static FaultStorage create(String clusterSize, long size) throws IOException {
        FaultStorage s = new FaultStorage("vmstate");
        new Qcow2FormatDriver().create(s, CreateOptions.builder().size(size).option("cluster_size", clusterSize)
                .build());
        return s;
    }

    private static Image open(FaultStorage s, boolean writable) throws IOException {
        return LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(writable)), s)
                .writable(writable).build();
    }

    @Test
    void qemusL1LimitIsRefusedBeforeAnythingChanges() throws IOException {
        // 512-byte clusters: an L1 entry maps 32 KiB; entry 4194303 is within QEMU's 32 MiB table, but growing
        // there by half again as many entries from 128 passes it (QEMU fails the write with EFBIG)
        FaultStorage s = create("512", 4 << 20);
        byte[] before = s.content();
        try (Image image = open(s, true)) {
            assertTrue(image.supports(Feature.VM_STATE));
            long position = (4194303L << 15) - (4 << 20);
            assertThrows(ImageLimitException.class, () -> image.vmState().write(ByteBuffer.allocate(512), position));
            assertThrows(IllegalArgumentException.class, () -> image.vmState().write(ByteBuffer.allocate(512),
                    Long.MAX_VALUE - 1024));
            assertThrows(IllegalArgumentException.class, () -> image.vmState().read(ByteBuffer.allocate(512), -512));
            ByteBuffer read = ByteBuffer.allocate(512);
            image.vmState().read(read, position);
            assertEquals(-1, read.flip().mismatch(ByteBuffer.allocate(512)), "unwritten VM state reads as zero");
        }
        assertArrayEquals(before, s.content(), "a refused write changed the file");
    }

    @Test
    void aReadOnlyImageReadsTheAreaAndRefusesWrites() throws IOException {
        FaultStorage s = create("65536", 4 << 20);
        try (Image image = open(s, true)) {
            image.vmState().write(ByteBuffer.wrap(filled(4096, 7)), 1 << 20);
            assertEquals(4 << 20, image.size(), "the virtual size did not change");
            assertEquals(4 << 20, image.extents(0, 4 << 20).getFirst().length());
        }
        try (Image image = open(s, false)) {
            ByteBuffer read = ByteBuffer.allocate(4096);
            image.vmState().read(read, 1 << 20);
            assertArrayEquals(filled(4096, 7), read.array());
            assertThrows(ReadOnlyImageException.class, () -> image.vmState().write(ByteBuffer.allocate(512), 0));
        }
    }

    /** An encrypted image: qemu-io's and imago's writes leave the same file, and each reads the other's. */
    @Test
    void encryptedAreaIsQemusByteForByte() throws IOException {
        Qemu.require();
        Path created = dir.resolve("created.qcow2");
        Qcow2LuksQemuTest.qemuCreate(dir, created, "", "4M");
        Path theirs = Files.copy(created, dir.resolve("theirs.qcow2"));
        Path ours = Files.copy(created, dir.resolve("ours.qcow2"));
        Qemu.ok(dir, Qemu.io(), "--object", Qcow2LuksQemuTest.SECRET, "--image-opts", "-c", "write -b -P 0x42 512 1k",
                "-c", "write -b -P 3 1G 64k", "-c", "write -P 5 0 4k", Qcow2LuksQemuTest.imageOpts(theirs));
        try (Image image = Qcow2LuksQemuTest.open(ours, true)) {
            image.vmState().write(ByteBuffer.wrap(filled(1024, 0x42)), 512);
            image.vmState().write(ByteBuffer.wrap(filled(65536, 3)), 1 << 30);
            image.write(ByteBuffer.wrap(filled(4096, 5)), 0);
        }
        assertEquals(-1, Files.mismatch(theirs, ours), "imago's encrypted VM state is not where QEMU's is");
        String reads = Qemu.ok(dir, Qemu.io(), "--object", Qcow2LuksQemuTest.SECRET, "--image-opts", "-c",
                "read -b -P 0x42 512 1k", "-c", "read -b -P 3 1G 64k", "-c", "read -b -P 0 0 512",
                Qcow2LuksQemuTest.imageOpts(ours));
        assertFalse(reads.contains("failed"), reads);
        try (Image image = Qcow2LuksQemuTest.open(theirs, false)) {
            ByteBuffer read = ByteBuffer.allocate(1536);
            image.vmState().read(read, 0);
            byte[] expected = new byte[1536];
            Arrays.fill(expected, 512, 1536, (byte) 0x42);
            assertArrayEquals(expected, read.array());
        }
    }

    /** Where the workload writes in the area: slots this far apart, so that the L1 table grows several times. */
    private static final int SLOT = 2 << 20;
    private static final int SLOTS = 6;
    private static final int SLOT_BYTES = 80 << 10;
    private static final int SIZE = 1 << 20;

    /**
     * Power loss at every (sampled) write of a workload of VM state writes (growing the L1 table, allocating L2
     * tables and clusters, copying on write from the backing file in the area), guest writes and flushes: every
     * file that could be left passes {@code qemu-img check} (leaks allowed) and reads every byte flushed before
     * the power went out, in the guest disk and in the area.
     */
    @Test
    void powerLossDuringVmStateWritesNeverCorrupts() throws IOException {
        Qemu.require();
        Path basePath = dir.resolve("vm-base.raw");
        byte[] base = new byte[SLOT * SLOTS + (8 << 20)];
        new Random(3).nextBytes(base);
        Files.write(basePath, base);
        int crashPoints = 0;
        for (String options : new String[] {"4096", "512", "4096,backed", "16384,extended_l2"}) {
            boolean backed = options.endsWith(",backed");
            String clusterSize = options.split(",")[0];
            int total = Integer.MAX_VALUE;
            int runs = 0;
            for (int crashAt = -1; crashAt < total; crashAt = Qcow2FaultTest.nextCrash(crashAt, false, -1), runs++) {
                Qcow2FaultTest.CrashStorage s = new Qcow2FaultTest.CrashStorage();
                CreateOptions.Builder b = CreateOptions.builder().size(SIZE).option("cluster_size", clusterSize);
                if (options.contains("extended_l2")) {
                    b.option("extended_l2", "on");
                }
                if (backed) {
                    b.backingFile(basePath.getFileName().toString()).backingFormat("raw");
                }
                new Qcow2FormatDriver().create(s, b.build());
                s.sync();
                s.crashAt(crashAt, 1);
                long vmOffset = vmOffset(Integer.parseInt(clusterSize), options.contains("extended_l2"));
                // what the guest and the area hold, what was flushed last and what changed since (as of the crash)
                byte[] disk = backed ? Arrays.copyOf(base, SIZE) : new byte[SIZE];
                byte[] area = new byte[SLOTS * SLOT_BYTES];
                for (int k = 0; backed && k < SLOTS; k++) {
                    System.arraycopy(base, (int) (vmOffset + (long) k * SLOT), area, k * SLOT_BYTES, SLOT_BYTES);
                }
                byte[][] flushed = {disk.clone(), area.clone()};
                boolean[][] touched = {new boolean[SIZE], new boolean[area.length]};
                byte[][] flushedAtCrash = null;
                boolean[][] touchedAtCrash = null;
                Random r = new Random(17);
                LayeredImage.Builder ib = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s,
                        OpenContext.of(true)), s).writable(true);
                if (backed) {
                    ib.backing(imago.probe.Imago.opener().path(basePath).format("raw").open(), true);
                }
                try (Image image = ib.build()) {
                    for (int i = 0; i < 18; i++) {
                        int len = 1 + r.nextInt(12_000);
                        switch (i % 3) {
                            case 0, 1 -> {
                                // the area: a slot further on every few writes, so the L1 table keeps growing
                                int slot = Math.min(SLOTS - 1, i / 3);
                                int at = r.nextInt(SLOT_BYTES - len);
                                byte[] data = filled(len, i + 1);
                                image.vmState().write(ByteBuffer.wrap(data), (long) slot * SLOT + at);
                                System.arraycopy(data, 0, area, slot * SLOT_BYTES + at, len);
                                Arrays.fill(touched[1], slot * SLOT_BYTES + at, slot * SLOT_BYTES + at + len, true);
                                if (i % 3 == 1) {
                                    int off = r.nextInt(SIZE - len);
                                    byte[] guest = filled(len, 100 + i);
                                    image.write(ByteBuffer.wrap(guest), off);
                                    System.arraycopy(guest, 0, disk, off, len);
                                    Arrays.fill(touched[0], off, off + len, true);
                                }
                            }
                            default -> {
                                image.flush();
                                if (s.crashed().isEmpty()) {
                                    flushed = new byte[][] {disk.clone(), area.clone()};
                                    touched = new boolean[][] {new boolean[SIZE], new boolean[area.length]};
                                }
                            }
                        }
                        if (s.crashed().isPresent() && flushedAtCrash == null) {
                            flushedAtCrash = flushed;
                            touchedAtCrash = touched;
                        }
                    }
                }
                if (s.crashed().isPresent() && flushedAtCrash == null) {
                    flushedAtCrash = flushed;
                    touchedAtCrash = touched;
                }
                if (s.crashed().isEmpty()) {
                    total = s.points();
                    assertTrue(ByteBuffer.wrap(s.content()).getInt(36) > 1, "the L1 table did not grow");
                    continue;
                }
                crashPoints++;
                int at = crashAt;
                for (byte[] variant : s.crashFiles()) {
                    Path file = dir.resolve("vm-crash.qcow2");
                    Files.write(file, variant);
                    Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
                    String what = options + ", power loss at write " + at;
                    assertTrue(check.status() == 0 || check.status() == 3, () -> what + ": qemu-img check status "
                            + check.status() + "\n" + check.out() + check.err());
                    Qcow2FaultTest.assertFlushedKept(what, variant, backed ? basePath : null, flushedAtCrash[0],
                            touchedAtCrash[0]);
                    assertAreaKept(what, variant, backed ? basePath : null, flushedAtCrash[1], touchedAtCrash[1]);
                }
            }
            assertTrue(runs > 30, options + ": only " + runs + " runs");
        }
        System.out.println("Qcow2VmStateTest: " + crashPoints + " crash points during VM state writes, 0 corruptions");
    }

    /** The area's offset for a 1 MiB image: one L2 table's span (cluster size times entries per table). */
    private static long vmOffset(int clusterSize, boolean extendedL2) {
        long span = (long) clusterSize * (clusterSize / (extendedL2 ? 16 : 8));
        return (SIZE + span - 1) / span * span;
    }

    /** The area's slots read as flushed wherever nothing changed them since. */
    private static void assertAreaKept(String what, byte[] file, Path base, byte[] flushed, boolean[] touched)
            throws IOException {
        BytesStorage crashed = new BytesStorage("crash", file);
        LayeredImage.Builder cb = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(crashed,
                OpenContext.of(false)), crashed);
        if (base != null) {
            cb.backing(imago.probe.Imago.opener().path(base).format("raw").open(), true);
        }
        try (Image image = cb.build()) {
            for (int slot = 0; slot < SLOTS; slot++) {
                ByteBuffer b = ByteBuffer.allocate(SLOT_BYTES);
                image.vmState().read(b, (long) slot * SLOT);
                for (int k = 0; k < SLOT_BYTES; k++) {
                    int i = slot * SLOT_BYTES + k;
                    if (!touched[i] && b.get(k) != flushed[i]) {
                        throw new AssertionError(what + ": VM state byte " + ((long) slot * SLOT + k) + " was flushed as "
                                + flushed[i] + " but reads " + b.get(k));
                    }
                }
            }
        }
    }

    private static byte[] filled(int length, int value) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** The area starts where qemu-io's {@code info} says: the virtual size rounded up to one L2 table's span. */
    @Test
    void theVmOffsetIsQemus() throws IOException {
        for (List<Object> c : List.<List<Object>>of(List.of("65536", false, 4L << 20, 512L << 20),
                List.of("512", false, 1L << 20, 1L << 20), List.of("65536", true, 4L << 20, 256L << 20),
                List.of("2097152", false, 1L << 40, 1L << 40))) {
            FaultStorage s = new FaultStorage("offset");
            CreateOptions.Builder b = CreateOptions.builder().size((Long) c.get(2)).option("cluster_size",
                    (String) c.get(0));
            if ((Boolean) c.get(1)) {
                b.option("extended_l2", "on");
            }
            new Qcow2FormatDriver().create(s, b.build());
            Qcow2Instance layer = (Qcow2Instance) new Qcow2FormatDriver().open(s, OpenContext.of(false));
            assertEquals((Long) c.get(3), ((Qcow2VmState) layer.capability(imago.api.spi.VmStateArea.class)
                    .orElseThrow()).offset(), c.toString());
            layer.close();
        }
    }
}
