package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Writing images with persistent dirty bitmaps: the same operations run by {@code qemu-io} on one copy
 * and by imago on another must leave the same bitmaps (flags, granularity, table size, every bit),
 * images that {@code qemu-img check} finds clean and {@code qemu-img compare} finds equal. Power loss
 * at any write must leave either a bitmap marked in use or one that has every change.
 */
class Qcow2BitmapWriteTest {
    @TempDir
    static Path dir;
    static int counter;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /**
     * A bitmap as the directory and its table describe it, decoded here independently of the writer.
     *
     * @param bits the set bits of its data ({@code null} for a bitmap in use, whose data is not read)
     */
    record Decoded(String name, int flags, int granularityBits, int tableSize, BitSet bits) {
    }

    /** The bitmaps of a qcow2 file; empty when the extension is missing or its autoclear bit is clear. */
    static List<Decoded> decode(byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.BIG_ENDIAN);
        int clusterSize = 1 << b.getInt(20);
        if (b.getInt(4) < 3 || (b.getLong(88) & 1) == 0) {
            return List.of();
        }
        int p = b.getInt(100);
        while (true) {
            int type = b.getInt(p);
            int len = b.getInt(p + 4);
            if (type == 0) {
                return List.of();
            }
            if (type == 0x23852875) {
                break;
            }
            p += 8 + ((len + 7) & ~7);
        }
        int count = b.getInt(p + 8);
        int q = (int) b.getLong(p + 24);
        List<Decoded> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long table = b.getLong(q);
            int tableSize = b.getInt(q + 8);
            int flags = b.getInt(q + 12);
            int gran = b.get(q + 17);
            int nameSize = Short.toUnsignedInt(b.getShort(q + 18));
            int extra = b.getInt(q + 20);
            String name = new String(file, q + 24 + extra, nameSize, StandardCharsets.UTF_8);
            BitSet bits = null;
            if ((flags & 1) == 0) {
                bits = new BitSet();
                long perCluster = 8L * clusterSize;
                for (int k = 0; k < tableSize; k++) {
                    long e = b.getLong((int) table + 8 * k);
                    int data = (int) (e & 0x00ff_ffff_ffff_fe00L);
                    if (data != 0) {
                        for (int j = 0; j < clusterSize; j++) {
                            int v = file[data + j] & 0xff;
                            for (int bit = 0; v != 0; bit++, v >>>= 1) {
                                if ((v & 1) != 0) {
                                    bits.set((int) (k * perCluster + 8L * j + bit));
                                }
                            }
                        }
                    } else if ((e & 1) != 0) {
                        bits.set((int) (k * perCluster), (int) ((k + 1) * perCluster));
                    }
                }
            }
            out.add(new Decoded(name, flags, gran, tableSize, bits));
            q += (24 + extra + nameSize + 7) & ~7;
        }
        return out;
    }

    /**
     * One layout: create options, size, and the bitmaps to add ({@code name:granularity}, with
     * {@code :disabled} for one that does not record writes, {@code :inuse} for one left in use by a
     * killed QEMU).
     */
    record Layout(String options, long size, List<String> bitmaps, boolean resizes) {
        @Override
        public String toString() {
            return "[" + options + "] " + bitmaps;
        }
    }

    static Stream<Layout> layouts() {
        return Stream.of(
                new Layout("cluster_size=4096", 8L << 20, List.of("fine:512", "coarse:65536", "off:4096:disabled"),
                        true),
                new Layout("", 24L << 20, List.of("b0:65536", "b1:1048576:disabled"), true),
                new Layout("cluster_size=16384,extended_l2=on", 6L << 20, List.of("x:2048"), true),
                new Layout("cluster_size=4096", 4L << 20, List.of("stale:4096:inuse", "live:512"), false));
    }

    /** Makes the image of {@code layout} with qemu-img: some data, then the bitmaps, then more data. */
    static Path build(Layout layout) {
        Path img = dir.resolve("bm" + counter++ + ".qcow2");
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (!layout.options().isEmpty()) {
            create.addAll(List.of("-o", layout.options()));
        }
        create.addAll(List.of(img, Long.toString(layout.size())));
        Qemu.ok(dir, create.toArray());
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 9 0 300k"));
        for (String spec : layout.bitmaps()) {
            String[] f = spec.split(":");
            if (f.length > 2 && f[2].equals("inuse")) {
                Qemu.ok(dir, "qemu-img", "bitmap", "--add", "-g", f[1], img, f[0]);
                // a QEMU that dies with the image open leaves its bitmaps in use
                Qemu.run(dir, "qemu-io", "-c", "write -P 3 1M 4k", "-c", "sigraise 9", img);
                assertEquals(1, decode(read(img)).getFirst().flags() & 1, "the bitmap is not in use");
            } else if (f.length > 2) {
                Qemu.ok(dir, "qemu-img", "bitmap", "--add", "--disable", "-g", f[1], img, f[0]);
            } else {
                Qemu.ok(dir, "qemu-img", "bitmap", "--add", "-g", f[1], img, f[0]);
            }
        }
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 8 100k 70k"));
        return img;
    }

    /** A random sequence of qemu-io commands over an image of {@code size} bytes. */
    static List<String> commands(Layout layout, Random r) {
        List<String> out = new ArrayList<>();
        long size = layout.size();
        int clusterSize = layout.options().contains("4096") ? 4096 : layout.options().contains("16384") ? 16384
                : 65536;
        for (int i = 0; i < 14; i++) {
            long len = 1 + r.nextInt(r.nextBoolean() ? 3000 : 300_000);
            long off = (long) (r.nextDouble() * (size - len)) & ~(r.nextBoolean() ? 511L : 0L);
            switch (r.nextInt(layout.resizes() ? 7 : 6)) {
                case 0, 1 -> out.add("write -P " + (i + 1) + " " + off + " " + len);
                case 2 -> out.add("write -z " + off + " " + len);
                case 3 -> out.add("discard " + off + " " + len);
                case 4 -> {
                    long c = (long) (r.nextDouble() * (size / clusterSize - 1)) * clusterSize;
                    out.add("write -c -P " + (i + 1) + " " + c + " " + clusterSize);
                }
                case 5 -> out.add("write " + (size - 513) + " 513");
                default -> {
                    // shrink, or grow back to the layout's size
                    // QEMU 7.2 leaves the subclusters of an extended L2 cluster past a shrink in the middle of it
                    // allocated, so they show their old data after growing again (imago reads zeroes there):
                    // with extended L2 entries, shrink to a cluster boundary
                    long unit = layout.options().contains("extended_l2=on") ? clusterSize : 512;
                    long to = size < layout.size() ? layout.size() : (size / 2 + r.nextInt(1 << 16)) / unit * unit;
                    out.add("truncate " + to);
                    size = to;
                }
            }
        }
        if (size != layout.size()) {
            out.add("truncate " + layout.size());
        }
        return out;
    }

    /** Runs qemu-io commands through imago's library API on an open image. */
    static void run(Image image, String command) throws IOException {
        String[] w = command.split(" ");
        switch (w[0]) {
            case "truncate" -> image.resize(Long.parseLong(w[1]), Preallocation.OFF);
            case "discard" -> image.discard(Long.parseLong(w[1]), Long.parseLong(w[2]));
            case "write" -> {
                long off = Long.parseLong(w[w.length - 2]);
                int len = Integer.parseInt(w[w.length - 1]);
                if (w[1].equals("-z")) {
                    image.writeZeroes(off, len);
                    return;
                }
                byte[] data = new byte[len];
                Arrays.fill(data, w[1].equals("-P") || w[1].equals("-c") && w[2].equals("-P")
                        ? (byte) Integer.parseInt(w[w[1].equals("-P") ? 2 : 3]) : (byte) 0xcd);
                if (w[1].equals("-c")) {
                    // a cluster that is already allocated cannot be written compressed (qemu-io fails as well)
                    if (image.mapping(off, len) instanceof imago.api.Mapping.Data) {
                        image.write(ByteBuffer.wrap(data), off);
                    } else {
                        image.writeCompressed(ByteBuffer.wrap(data), off);
                    }
                } else {
                    image.write(ByteBuffer.wrap(data), off);
                }
            }
            default -> throw new IllegalArgumentException(command);
        }
    }

    static byte[] read(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @ParameterizedTest
    @MethodSource("layouts")
    void sameBitmapsAsQemu(Layout layout) throws IOException {
        Path template = build(layout);
        int sequences = 0;
        int operations = 0;
        for (int seed = 0; seed < 4; seed++) {
            List<String> commands = commands(layout, new Random(seed * 7919L + layout.hashCode()));
            Path q = dir.resolve("q" + counter++ + ".qcow2");
            Path i = dir.resolve("i" + counter++ + ".qcow2");
            Files.copy(template, q);
            Files.copy(template, i);
            // in several sessions: every close stores the bitmaps, every open marks them in use again
            int split = 1 + seed % 3;
            int per = Math.ceilDiv(commands.size(), split);
            for (int s = 0; s < commands.size(); s += per) {
                List<String> part = commands.subList(s, Math.min(commands.size(), s + per));
                List<String> qemuPart = new ArrayList<>();
                try (Image image = Imago.opener().path(i).format("qcow2").writable(true).open()) {
                    boolean shrunk = false;
                    for (String c : part) {
                        // qemu-io fails a compressed write over allocated clusters; and QEMU 7.2 packs compressed
                        // data into a cluster a shrink freed and a later write reused (the guest's data is
                        // overwritten: qemu-img check then reports an OFLAG_COPIED error), so after a shrink
                        // both sides write plainly
                        if (c.startsWith("write -c") && (shrunk || image.mapping(Long.parseLong(c.split(" ")[4]), 1)
                                instanceof imago.api.Mapping.Data)) {
                            c = c.replace("write -c ", "write ");
                        }
                        if (c.startsWith("truncate") && Long.parseLong(c.split(" ")[1]) < image.size()) {
                            shrunk = true;
                        }
                        qemuPart.add(c);
                        run(image, c);
                    }
                }
                Qcow2DifferentialTest.qemuIo(dir, q.toString(), "qcow2", qemuPart);
            }
            sequences++;
            operations += commands.size();
            String check = Qemu.ok(dir, "qemu-img", "check", i);
            assertTrue(check.startsWith("No errors were found"), layout + " " + commands + "\n" + check);
            Qemu.Output compare = Qemu.run(dir, "qemu-img", "compare", q, i);
            assertEquals(0, compare.status(), () -> layout + " " + commands + "\n" + compare.out() + compare.err());
            assertEquals(decode(read(q)), decode(read(i)), () -> layout + " " + commands);
            assertEquals(Qemu.ok(dir, "qemu-img", "info", "--output=json", q).replace(q.toString(), "F")
                    .replaceAll("\"actual-size\": \\d+", "").replaceAll("\"dirty-flag\": \\w+", ""),
                    Qemu.ok(dir, "qemu-img", "info", "--output=json", i).replace(i.toString(), "F")
                    .replaceAll("\"actual-size\": \\d+", "").replaceAll("\"dirty-flag\": \\w+", ""));
        }
        System.out.println("Qcow2BitmapWriteTest " + layout + ": " + sequences + " sequences, " + operations
                + " operations, bitmaps equal to qemu-io's");
    }

    @Test
    void bitmapsAreMarkedInUseBeforeTheFirstChangeAndStoredOnClose() throws IOException {
        Layout layout = new Layout("cluster_size=4096", 4L << 20, List.of("b:512"), false);
        Path img = build(layout);
        // with a stray autoclear bit besides: cleared on the writable open, the bitmaps bit kept
        byte[] bytes = read(img);
        ByteBuffer.wrap(bytes).putLong(88, 1L | 1L << 7);
        Files.write(img, bytes);
        BitSet before = decode(read(img)).getFirst().bits();
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            // opening alone changes nothing
            assertEquals(0, decode(read(img)).getFirst().flags() & 1);
            image.write(ByteBuffer.wrap(new byte[] {1}), 2_000_000);
            assertEquals(1, decode(read(img)).getFirst().flags() & 1, "not in use while written");
            assertEquals(List.of("in-use", "auto"), bitmapFlags(image));
            image.flush();
            assertEquals(1, decode(read(img)).getFirst().flags() & 1, "a flush stores nothing (as QEMU)");
        }
        assertEquals(1L, ByteBuffer.wrap(read(img)).getLong(88));
        Decoded after = decode(read(img)).getFirst();
        assertEquals(0, after.flags() & 1);
        BitSet expected = (BitSet) before.clone();
        expected.set(2_000_000 >>> 9);
        assertEquals(expected, after.bits());
        String check = Qemu.ok(dir, "qemu-img", "check", img);
        assertTrue(check.startsWith("No errors were found"), check);
    }

    @SuppressWarnings("unchecked")
    private static List<String> bitmapFlags(Image image) throws IOException {
        var list = (List<java.util.Map<String, Object>>) image.info().formatSpecific().get("bitmaps");
        return (List<String>) list.getFirst().get("flags");
    }

    @Test
    void inconsistentBitmapBlocksResizeAndSnapshotApplyIsRefused() throws IOException {
        Path img = build(new Layout("cluster_size=4096", 4L << 20, List.of("stale:4096:inuse"), false));
        byte[] before = read(img);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            var u = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(8L << 20, Preallocation.OFF));
            assertEquals("Bitmap 'stale' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to "
                    + "delete this bitmap from disk", u.detail());
        }
        assertArrayEquals(before, read(img));
        Path snap = build(new Layout("cluster_size=4096", 4L << 20, List.of("b:65536"), false));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", snap);
        byte[] withSnapshot = read(snap);
        try (Image image = Imago.opener().path(snap).format("qcow2").writable(true).open()) {
            var u = assertThrows(UnsupportedFeatureException.class, () -> image.applySnapshot("s1"));
            assertEquals("Device has active dirty bitmaps", u.detail());
        }
        assertArrayEquals(withSnapshot, read(snap));
    }

    @Test
    void damagedBitmapTablesRefuseWritableOpens() throws IOException {
        Path img = build(new Layout("cluster_size=4096", 4L << 20, List.of("b:512"), false));
        byte[] good = read(img);
        ByteBuffer b = ByteBuffer.wrap(good);
        int p = b.getInt(100);
        while (b.getInt(p) != 0x23852875) {
            p += 8 + ((b.getInt(p + 4) + 7) & ~7);
        }
        int entry = (int) b.getLong(p + 24);
        int table = (int) b.getLong(entry);
        record Damage(String what, int at, long value, boolean size) {
        }
        for (Damage d : List.of(new Damage("reserved bits set", table, 0x100, false),
                new Damage("all-ones flag with a data cluster", table, 0x10001, false),
                new Damage("not aligned", table, 0x10200, false),
                new Damage("past the end of the file", table, 1L << 40, false),
                new Damage("needs 1", entry + 8, 3, true))) {
            byte[] bad = good.clone();
            if (d.size()) {
                ByteBuffer.wrap(bad).putInt(d.at(), (int) d.value());
            } else {
                ByteBuffer.wrap(bad).putLong(d.at(), d.value());
            }
            Path f = dir.resolve("damaged" + counter++ + ".qcow2");
            Files.write(f, bad);
            var e = assertThrows(CorruptImageException.class,
                    () -> Imago.opener().path(f).format("qcow2").writable(true).open());
            assertTrue(e.getMessage().contains(d.what()) && e.getMessage().contains(f.toString()), e.getMessage());
            assertArrayEquals(bad, read(f), "a refused open wrote");
            // read-only opens read the guest data as before
            try (Image image = Imago.opener().path(f).format("qcow2").open()) {
                assertEquals(4L << 20, image.size());
            }
        }
    }

    /**
     * Power loss at every (sampled) write of a workload over an image with bitmaps, closed at the end:
     * the file left must pass {@code qemu-img check} (leaks allowed), must open in QEMU (which loads
     * every bitmap not in use), and each recording bitmap that is not in use must have the bit of every
     * granule whose content differs from the original.
     */
    @Test
    void powerLossNeverLeavesABitmapThatMissesAWrite() throws IOException {
        Layout layout = new Layout("cluster_size=4096", 512 << 10, List.of("fine:512", "coarse:65536",
                "off:4096:disabled"), true);
        Path template = build(layout);
        byte[] original = read(template);
        Path originalRaw = dir.resolve("crash-original.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", template, originalRaw);
        byte[] originalContent = read(originalRaw);
        int size = (int) layout.size();
        int total = Integer.MAX_VALUE;
        int crashPoints = 0;
        int inUse = 0;
        int stored = 0;
        int dropped = 0;
        // every write early on and in the close that stores the bitmaps; sampled in between
        for (int crashAt = -1; crashAt < total; crashAt = crashAt < 30 || crashAt >= total - 40 ? crashAt + 1
                : Math.min(crashAt + 1 + crashAt / 6, total - 40)) {
            Qcow2FaultTest.CrashStorage s = new Qcow2FaultTest.CrashStorage();
            s.write(ByteBuffer.wrap(original), 0);
            s.sync();
            s.crashAt(crashAt, 1);
            Random r = new Random(3);
            int now = size;
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)),
                    s).writable(true).build()) {
                for (int i = 0; i < 16; i++) {
                    int len = 1 + r.nextInt(20_000);
                    int off = r.nextInt(now - len);
                    switch (i % 8) {
                        case 2 -> image.writeZeroes(off, len);
                        case 4 -> image.discard(off, len);
                        case 5 -> image.flush();
                        case 6 -> {
                            now = i < 8 ? size / 2 : size;
                            image.resize(now, Preallocation.OFF);
                        }
                        default -> {
                            byte[] data = new byte[len];
                            Arrays.fill(data, (byte) (i + 1));
                            image.write(ByteBuffer.wrap(data), off);
                        }
                    }
                }
            }
            if (s.crashed().isEmpty()) {
                total = s.points();
                continue;
            }
            crashPoints++;
            Path file = dir.resolve("bm-crash.qcow2");
            Files.write(file, s.crashed().orElseThrow());
            int at = crashAt;
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", file);
            assertTrue(check.status() == 0 || check.status() == 3, () -> "power loss at write " + at
                    + ": qemu-img check status " + check.status() + "\n" + check.out() + check.err());
            // QEMU loads every bitmap that is not in use when it opens the image, and fails if one is wrong
            Qemu.ok(dir, "qemu-io", "-r", "-c", "quit", file);
            List<Decoded> bitmaps = decode(s.crashed().orElseThrow());
            if (bitmaps.isEmpty()) {
                // the power went out between the steps of a directory update: the bitmaps are gone, as in QEMU
                dropped++;
                continue;
            }
            Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", file, dir.resolve("bm-crash.raw"));
            byte[] content = read(dir.resolve("bm-crash.raw"));
            int compared = Math.min(size / 2, content.length);
            for (Decoded d : bitmaps) {
                if ((d.flags() & 1) != 0) {
                    inUse++;
                    continue;
                }
                if (d.name().equals("off")) {
                    continue;
                }
                stored++;
                int granule = 1 << d.granularityBits();
                for (int k = 0; k < compared; k++) {
                    if (content[k] != originalContent[k] && !d.bits().get(k / granule)) {
                        throw new AssertionError("power loss at write " + at + ": bitmap " + d.name()
                                + " is consistent but misses the change of byte " + k);
                    }
                }
            }
        }
        assertTrue(crashPoints > 40, "only " + crashPoints + " crash points");
        assertTrue(inUse > 0 && stored > 0, "in use " + inUse + ", stored " + stored);
        System.out.println("Qcow2BitmapWriteTest: " + crashPoints + " crash points, " + inUse
                + " bitmaps left in use, " + stored + " consistent bitmaps with every change, " + dropped
                + " directory updates lost (leaks), 0 corruptions");
    }
}
