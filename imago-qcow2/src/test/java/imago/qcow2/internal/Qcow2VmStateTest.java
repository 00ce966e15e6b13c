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
import imago.testkit.PowerLossRuns;
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
            Path backing = backed ? basePath : null;
            String clusterSize = options.split(",")[0];
            boolean extendedL2 = options.contains("extended_l2");
            String createOptions = "cluster_size=" + clusterSize + (extendedL2 ? ",extended_l2=on" : "");
            long vmOffset = vmOffset(Integer.parseInt(clusterSize), extendedL2);
            // what the guest and the area hold at the start
            byte[] disk = backed ? Arrays.copyOf(base, SIZE) : new byte[SIZE];
            byte[] area = new byte[SLOTS * SLOT_BYTES];
            for (int k = 0; backed && k < SLOTS; k++) {
                System.arraycopy(base, (int) (vmOffset + (long) k * SLOT), area, k * SLOT_BYTES, SLOT_BYTES);
            }
            PowerLossRuns.Sweep sweep = PowerLossRuns.sweep(point -> Qcow2FaultTest.nextCrash(point, false, -1),
                    point -> {
                        FaultStorage s = Qcow2FaultTest.created(SIZE, createOptions, backing);
                        s.crashAt(point, 1);
                        Owed owed = new Owed(new PowerLossRuns.Owed(disk), new PowerLossRuns.Owed(area));
                        vmStateWorkload(s, backing, owed);
                        if (s.crashed().isEmpty()) {
                            assertTrue(ByteBuffer.wrap(s.content()).getInt(36) > 1, "the L1 table did not grow");
                        }
                        return new PowerLossRuns.Run<>(s, owed);
                    }, (point, variant, owed) -> {
                        Path file = dir.resolve("vm-crash.qcow2");
                        Files.write(file, variant);
                        String what = options + ", power loss at write " + point;
                        Qcow2FaultTest.assertConsistent(what, file);
                        owed.disk().assertKept(what, Qcow2FaultTest.read(variant, backing, SIZE));
                        owed.area().assertKept(what + ": VM state slots of " + SLOT_BYTES + " bytes every " + SLOT,
                                readArea(variant, backing));
                    });
            crashPoints += sweep.crashPoints();
            assertTrue(sweep.crashPoints() >= 30, options + ": only " + sweep.crashPoints() + " losses checked");
        }
        System.out.println("Qcow2VmStateTest: " + crashPoints + " crash points during VM state writes, 0 corruptions");
    }

    /** What the guest is owed of its disk and of the area's slots (one after the other). */
    private record Owed(PowerLossRuns.Owed disk, PowerLossRuns.Owed area) {
    }

    /**
     * The workload, noting what it changes in the guest disk and the area, until the power goes out: VM state writes,
     * each slot further on every few writes so that the L1 table keeps growing, guest writes and flushes.
     */
    private static void vmStateWorkload(FaultStorage s, Path backing, Owed owed) throws IOException {
        Random r = new Random(17);
        try (Image image = Qcow2FaultTest.open(s, true, backing)) {
            for (int i = 0; i < 18 && s.crashed().isEmpty(); i++) {
                int len = 1 + r.nextInt(12_000);
                if (i % 3 == 2) {
                    if (PowerLossRuns.flush(image, s)) {
                        owed.disk().flushed();
                        owed.area().flushed();
                    }
                    continue;
                }
                int slot = Math.min(SLOTS - 1, i / 3);
                int at = r.nextInt(SLOT_BYTES - len);
                byte[] data = filled(len, i + 1);
                image.vmState().write(ByteBuffer.wrap(data), (long) slot * SLOT + at);
                owed.area().changed(slot * SLOT_BYTES + at, data);
                if (i % 3 == 1) {
                    int off = r.nextInt(SIZE - len);
                    byte[] guest = filled(len, 100 + i);
                    image.write(ByteBuffer.wrap(guest), off);
                    owed.disk().changed(off, guest);
                }
            }
        }
    }

    /** The area's offset for a 1 MiB image: one L2 table's span (cluster size times entries per table). */
    private static long vmOffset(int clusterSize, boolean extendedL2) {
        long span = (long) clusterSize * (clusterSize / (extendedL2 ? 16 : 8));
        return (SIZE + span - 1) / span * span;
    }

    /** The area's slots, one after the other, as the qcow2 {@code file} over the raw file {@code base} reads them. */
    private static byte[] readArea(byte[] file, Path base) throws IOException {
        BytesStorage crashed = new BytesStorage("crash", file);
        byte[] area = new byte[SLOTS * SLOT_BYTES];
        try (Image image = Qcow2FaultTest.open(crashed, false, base)) {
            for (int slot = 0; slot < SLOTS; slot++) {
                image.vmState().read(ByteBuffer.wrap(area, slot * SLOT_BYTES, SLOT_BYTES), (long) slot * SLOT);
            }
        }
        return area;
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
