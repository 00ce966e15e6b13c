package imago.vmdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.PropertyRuns;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * streamOptimized writes in any order, as QEMU 7.2's vmdk driver takes them: the same qemu-io writes, run through
 * qemu-io and through imago on copies of one image (in several sessions, so that later ones append to what earlier
 * ones left), succeed and fail alike (a grain written again, or a part of one, is refused) and leave the same file,
 * byte for byte but for the descriptor's CID; qemu-img check, compare and map agree. And both ways: either side goes
 * on writing the file the other left.
 */
class VmdkStreamAnyOrderTest {
    private static final int GRAIN = 64 << 10;
    private static final int GRAINS = 16;
    /** 16 grains and a short last one, which may be written up to the end. */
    private static final long SIZE = (long) GRAINS * GRAIN + 4096;

    @TempDir
    Path dir;

    /** One write of the script: bytes of {@code pattern}, or zeroes ({@code write -z}). */
    record Op(long offset, long length, int pattern, boolean zero) {
        String qemuIo() {
            return zero ? "write -z " + offset + " " + length : "write -P " + pattern + " " + offset + " " + length;
        }
    }

    @Test
    void randomScriptsLeaveQemuIosFile() throws IOException {
        Qemu.require();
        long seed = PropertyRuns.seed("VmdkStreamAnyOrderTest");
        SplittableRandom r = new SplittableRandom(seed);
        for (int run = 0; run < 4; run++) {
            boolean zeroedGrains = r.nextBoolean();
            List<List<Op>> sessions = new ArrayList<>();
            for (int s = 1 + r.nextInt(3); s > 0; s--) {
                List<Op> ops = new ArrayList<>();
                for (int k = 1 + r.nextInt(10); k > 0; k--) {
                    ops.add(op(r));
                }
                sessions.add(ops);
            }
            String what = "seed " + seed + ", run " + run + (zeroedGrains ? ", zeroed grains" : "") + ": " + sessions;
            Path theirs = fresh("q" + run, zeroedGrains);
            Path ours = Files.copy(theirs, dir.resolve("i" + run + ".vmdk"));
            for (List<Op> ops : sessions) {
                assertEquals(qemuIo(theirs, ops), imago(ours, ops), what);
            }
            assertSameFile(theirs, ours, what);
        }
    }

    /** A whole grain (often), two, a part of one, the short last grain, or zeroes over whole grains. */
    private static Op op(SplittableRandom r) {
        int pattern = 1 + r.nextInt(250);
        long grain = (long) r.nextInt(GRAINS) * GRAIN;
        return switch (r.nextInt(10)) {
            case 0, 1, 2, 3 -> new Op(grain, GRAIN, pattern, false);
            case 4 -> new Op(Math.min(grain, (GRAINS - 2L) * GRAIN), 2L * GRAIN, pattern, false);
            case 5 -> new Op(grain + 512L * r.nextInt(4), 512L * (1 + r.nextInt(127)), pattern, false);
            case 6 -> new Op((long) GRAINS * GRAIN, SIZE - (long) GRAINS * GRAIN, pattern, false);
            case 7 -> new Op(grain, GRAIN, pattern, true);
            case 8 -> new Op(grain + 512L * r.nextInt(2), 4096, pattern, true);
            default -> new Op((long) GRAINS * GRAIN - GRAIN, GRAIN + SIZE - (long) GRAINS * GRAIN, pattern, false);
        };
    }

    /** A streamOptimized image as qemu-img creates it. */
    private Path fresh(String name, boolean zeroedGrains) {
        Path p = dir.resolve(name + ".vmdk");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized"
                + (zeroedGrains ? ",zeroed_grain=on" : ""), p, String.valueOf(SIZE));
        return p;
    }

    /** Runs {@code ops} in one qemu-io session: for each, whether it succeeded. */
    private List<Boolean> qemuIo(Path image, List<Op> ops) {
        List<Object> cmd = new ArrayList<>(List.of(Qemu.io(), "-f", "vmdk"));
        for (Op op : ops) {
            cmd.add("-c");
            cmd.add(op.qemuIo());
        }
        cmd.add(image);
        Qemu.Output out = Qemu.run(dir, cmd.toArray());
        List<Boolean> results = out.out().lines().filter(l -> l.startsWith("wrote ") || l.startsWith("write failed"))
                .map(l -> l.startsWith("wrote ")).toList();
        assertEquals(ops.size(), results.size(), out.out() + out.err());
        return results;
    }

    /** Runs {@code ops} through imago in one session: for each, whether it succeeded (or was refused). */
    private static List<Boolean> imago(Path image, List<Op> ops) throws IOException {
        List<Boolean> results = new ArrayList<>();
        try (Image i = Imago.opener().path(image).writable(true).open()) {
            assertTrue(i.supports(Feature.RANDOM_WRITES));
            assertFalse(i.supports(Feature.OVERWRITES));
            for (Op op : ops) {
                try {
                    if (op.zero()) {
                        i.writeZeroes(op.offset(), op.length(), Set.of(ZeroFlag.MAY_UNMAP));
                    } else {
                        byte[] b = new byte[(int) op.length()];
                        Arrays.fill(b, (byte) op.pattern());
                        i.write(ByteBuffer.wrap(b), op.offset());
                    }
                    results.add(true);
                } catch (UnsupportedFeatureException e) {
                    assertEquals(Feature.OVERWRITES, e.feature(), e.getMessage());
                    results.add(false);
                }
            }
        }
        return results;
    }

    /** The files are equal but for the CID in the descriptor, and qemu-img finds them equal and clean. */
    private void assertSameFile(Path theirs, Path ours, String what) throws IOException {
        assertEquals("No errors were found on the image.\n", Qemu.ok(dir, Qemu.img(), "check", ours), what);
        assertEquals(0, Qemu.compare(theirs, "vmdk", ours, "vmdk").status(), what);
        assertEquals(Qemu.map(theirs, "vmdk"), Qemu.map(ours, "vmdk"), what);
        byte[] a = Files.readAllBytes(theirs);
        byte[] b = Files.readAllBytes(ours);
        assertEquals(descriptorWithoutCid(a), descriptorWithoutCid(b), what);
        assertArrayEquals(withoutDescriptor(a), withoutDescriptor(b), what);
    }

    /** Where qemu-img puts the descriptor of a streamOptimized image: sectors 1 to 20. */
    private static final int DESCRIPTOR_START = 512;
    private static final int DESCRIPTOR_END = 21 * 512;

    /**
     * The descriptor's text up to its end (the first NUL) without its {@code CID=} line: each side draws its own CID
     * when it first writes, and when the new one has fewer digits QEMU leaves the old text's last bytes after the NUL.
     */
    static String descriptorWithoutCid(byte[] file) {
        String text = new String(file, DESCRIPTOR_START, DESCRIPTOR_END - DESCRIPTOR_START, StandardCharsets.ISO_8859_1);
        assertTrue(text.contains("\nCID="), "a descriptor with a CID");
        int end = text.indexOf('\0');
        return text.substring(0, end < 0 ? text.length() : end).replaceFirst("\nCID=[0-9a-f]+\n", "\nCID\n");
    }

    /** The file with the descriptor's sectors zeroed. */
    static byte[] withoutDescriptor(byte[] file) {
        byte[] b = file.clone();
        Arrays.fill(b, DESCRIPTOR_START, DESCRIPTOR_END, (byte) 0);
        return b;
    }

    /** imago goes on writing what qemu-io wrote, and qemu-io what imago wrote: the files stay the same. */
    @Test
    void eachSideAppendsToTheOthersFile() throws IOException {
        Qemu.require();
        List<Op> first = List.of(new Op(5L * GRAIN, GRAIN, 5, false), new Op(GRAIN, GRAIN, 1, false),
                new Op(9L * GRAIN, 100, 9, false), new Op(0, 2L * GRAIN, 7, false));
        List<Op> second = List.of(new Op(3L * GRAIN, GRAIN, 3, false), new Op(5L * GRAIN, GRAIN, 6, false),
                new Op((long) GRAINS * GRAIN, 4096, 4, false), new Op(2L * GRAIN, GRAIN, 2, false));
        Path q = fresh("q", false);
        Path i = Files.copy(q, dir.resolve("i.vmdk"));
        Path qi = Files.copy(q, dir.resolve("qi.vmdk"));
        Path iq = Files.copy(q, dir.resolve("iq.vmdk"));
        List<Boolean> expected = qemuIo(q, first);
        // the last write takes grain 0, then fails on grain 1, written already
        assertEquals(List.of(true, true, false, false), expected);
        qemuIo(q, second);
        assertEquals(expected, imago(i, first));
        imago(i, second);
        qemuIo(qi, first);
        assertEquals(List.of(true, false, true, true), imago(qi, second));
        imago(iq, first);
        assertEquals(List.of(true, false, true, true), qemuIo(iq, second));
        for (Path p : List.of(i, qi, iq)) {
            assertSameFile(q, p, p.getFileName().toString());
        }
    }

    /** A grain written again, or a part of a grain, is refused as an overwrite, whichever way it comes. */
    @Test
    void overwritesAreRefused() throws IOException {
        Qemu.require();
        Path p = fresh("x", false);
        try (Image i = Imago.opener().path(p).writable(true).open()) {
            ByteBuffer grain = ByteBuffer.allocate(GRAIN);
            i.writeCompressed(grain.duplicate(), 2L * GRAIN);
            assertEquals(Feature.OVERWRITES, assertThrows(UnsupportedFeatureException.class,
                    () -> i.writeCompressed(grain.duplicate(), 2L * GRAIN)).feature());
            assertEquals(Feature.OVERWRITES, assertThrows(UnsupportedFeatureException.class,
                    () -> i.write(grain.duplicate(), 2L * GRAIN)).feature());
            assertEquals(Feature.OVERWRITES, assertThrows(UnsupportedFeatureException.class,
                    () -> i.write(ByteBuffer.allocate(512), 3L * GRAIN)).feature());
            i.write(grain.duplicate(), GRAIN);
        }
        assertEquals("No errors were found on the image.\n", Qemu.ok(dir, Qemu.img(), "check", p));
    }
}
