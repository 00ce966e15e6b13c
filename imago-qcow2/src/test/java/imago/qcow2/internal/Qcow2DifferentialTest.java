package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.api.SnapshotInfo;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.QemuMap;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Images made by qemu-img/qemu-io must read byte for byte as {@code qemu-img convert -O raw} reads
 * them, and map as {@code qemu-img map --output=json} maps them. The option matrix is sampled: every
 * cluster size with every compat and refcount width, and the other options pairwise.
 */
class Qcow2DifferentialTest {

    /**
     * One image configuration.
     *
     * @param clusterSize cluster size
     * @param compat "0.10" or "1.1"
     * @param refcountBits refcount width
     * @param extendedL2 extended L2 entries
     * @param compression null, "zlib" or "zstd" (made with convert -c)
     * @param dataFile null, "plain" or "raw"
     * @param backing null, "rel", "abs", "rel-nofmt" (a qcow2 → qcow2 → raw chain)
     * @param prealloc null or a preallocation mode
     */
    record Case(int clusterSize, String compat, int refcountBits, boolean extendedL2, String compression,
            String dataFile, String backing, String prealloc) {
        @Override
        public String toString() {
            return "cs=" + clusterSize + " compat=" + compat + " rc=" + refcountBits + (extendedL2 ? " extl2" : "")
                    + (compression != null ? " " + compression : "") + (dataFile != null ? " data=" + dataFile : "")
                    + (backing != null ? " backing=" + backing : "") + (prealloc != null ? " prealloc=" + prealloc : "");
        }

        String options() {
            StringBuilder o = new StringBuilder("compat=" + compat + ",cluster_size=" + clusterSize);
            if (!compat.equals("0.10")) {
                o.append(",refcount_bits=").append(refcountBits);
            }
            if (extendedL2) {
                o.append(",extended_l2=on");
            }
            if (compression != null && compat.equals("1.1")) {
                o.append(",compression_type=").append(compression);
            }
            if (dataFile != null) {
                o.append(",data_file=data.bin");
                if (dataFile.equals("raw")) {
                    o.append(",data_file_raw=on");
                }
            }
            if (prealloc != null) {
                o.append(",preallocation=").append(prealloc);
            }
            return o.toString();
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        int[] sizes = {512, 4096, 65536, 2 << 20};
        for (int cs : sizes) {
            out.add(new Case(cs, "0.10", 16, false, null, null, null, null));
            for (int rc : new int[] {1, 16, 64}) {
                out.add(new Case(cs, "1.1", rc, false, null, null, null, null));
            }
            out.add(new Case(cs, cs == 512 ? "0.10" : "1.1", 16, false, "zlib", null, null, null));
            out.add(new Case(cs, "1.1", cs == 4096 ? 64 : 16, false, "zstd", null, null, null));
        }
        for (int cs : new int[] {16384, 65536, 2 << 20}) {
            out.add(new Case(cs, "1.1", 16, true, null, null, null, null));
            out.add(new Case(cs, "1.1", cs == 65536 ? 1 : 16, true, null, "plain", null, null));
            out.add(new Case(cs, "1.1", 16, true, null, "raw", null, null));
        }
        out.add(new Case(65536, "1.1", 16, true, "zstd", null, null, null));
        out.add(new Case(32768, "1.1", 16, true, "zlib", null, "rel", null));
        for (int cs : new int[] {4096, 65536}) {
            out.add(new Case(cs, "1.1", 16, false, null, "plain", null, null));
            out.add(new Case(cs, "1.1", 16, false, null, "raw", null, null));
        }
        out.add(new Case(4096, "1.1", 16, false, null, null, "rel", null));
        out.add(new Case(65536, "1.1", 16, false, null, null, "abs", null));
        out.add(new Case(65536, "0.10", 16, false, null, null, "rel-nofmt", null));
        out.add(new Case(512, "1.1", 64, false, null, null, "abs-nofmt", null));
        out.add(new Case(65536, "1.1", 16, true, null, null, "abs", null));
        out.add(new Case(65536, "1.1", 16, false, null, null, null, "metadata"));
        out.add(new Case(4096, "1.1", 16, false, null, null, null, "falloc"));
        out.add(new Case(65536, "0.10", 16, false, null, null, null, "full"));
        out.add(new Case(16384, "1.1", 16, true, null, null, null, "metadata"));
        return out.stream();
    }

    /** Guest size: 16 clusters plus a partial sector-multiple tail, at least 1 MiB. */
    static long sizeFor(int cs) {
        return Math.max(16L * cs, 1 << 20) + 3 * 512;
    }

    /** qemu-io commands writing data, partial clusters, zero clusters (plain and allocated) and the tail. */
    static List<String> workload(int cs, long size, int seed) {
        List<String> c = new ArrayList<>();
        c.add("write -P 0x" + Integer.toHexString(0xa0 + seed) + " 0 " + 2 * cs);
        c.add("write -P 0x" + Integer.toHexString(0x11 + seed) + " " + (3L * cs + 512) + " 1536");
        c.add("write -z " + 6L * cs + " " + 2L * cs);
        c.add("write -P 0x22 " + 9L * cs + " " + cs);
        c.add("write -z " + 9L * cs + " " + cs);
        c.add("write -P 0x33 " + 11L * cs + " " + cs);
        c.add("write -P 0x44 " + (size - 4096) + " 4096");
        return c;
    }

    static void qemuIo(Path dir, String file, String fmt, List<String> commands) {
        QemuReads.qemuIo(dir, fmt, file, commands);
    }

    /** Builds the image for {@code c} in {@code dir} and returns its path. */
    static Path build(Path dir, Case c) throws IOException {
        int cs = c.clusterSize();
        long size = sizeFor(cs);
        if (c.compression() != null) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "src.raw", size);
            qemuIo(dir, "src.raw", "raw", workload(cs, size, 0));
            Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", c.options(), "src.raw", "img.qcow2");
            if (c.backing() != null) {
                Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options().replace(
                        ",compression_type=zlib", ""), "-b", "img.qcow2", "-F", "qcow2", "top.qcow2");
                qemuIo(dir, "top.qcow2", "qcow2", List.of("write -P 0x77 " + cs + " " + 3 * cs));
                return dir.resolve("top.qcow2");
            }
            return dir.resolve("img.qcow2");
        }
        if (c.backing() != null) {
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", size / 2);
            qemuIo(dir, "base.raw", "raw", List.of("write -P 0x5a 0 " + size / 4, "write -P 0x5b " + size / 3
                    + " 8192"));
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options(), "-b", "base.raw", "-F", "raw",
                    "mid.qcow2", size);
            qemuIo(dir, "mid.qcow2", "qcow2", List.of("write -P 0x6b " + 4L * cs + " " + 2L * cs,
                    "write -z " + 12L * cs + " " + cs));
            boolean abs = c.backing().startsWith("abs");
            String name = abs ? dir.resolve("mid.qcow2").toAbsolutePath().toString() : "mid.qcow2";
            Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options(), "-b", name, "-F", "qcow2",
                    "top.qcow2", size);
            qemuIo(dir, "top.qcow2", "qcow2", workload(cs, size, 1).subList(0, 4));
            Path top = dir.resolve("top.qcow2");
            if (c.backing().endsWith("nofmt")) {
                dropBackingFormat(top);
            }
            return top;
        }
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options(), "img.qcow2", size);
        qemuIo(dir, "img.qcow2", "qcow2", workload(cs, size, 0));
        return dir.resolve("img.qcow2");
    }

    /** Turns the backing format extension into an unknown one, so that the backing file must be probed. */
    static void dropBackingFormat(Path image) throws IOException {
        byte[] b = Files.readAllBytes(image);
        ByteBuffer bb = ByteBuffer.wrap(b);
        int headerLength = bb.getInt(4) == 3 ? bb.getInt(100) : 72;
        int p = headerLength;
        while (p + 8 <= 4096) {
            int type = bb.getInt(p);
            int len = bb.getInt(p + 4);
            if (type == 0) {
                break;
            }
            if (type == Qcow2Header.EXT_BACKING_FORMAT) {
                bb.putInt(p, 0x7e57e57e);
                Files.write(image, b);
                return;
            }
            p += 8 + ((len + 7) & ~7);
        }
        throw new AssertionError("no backing format extension in " + image);
    }

    static byte[] readAll(Image image) throws IOException {
        return QemuReads.readAll(image);
    }

    /** Compares imago's content and merged extents of {@code image} with qemu's. */
    static void compare(Path dir, Path image, Map<String, String> options, String qemuSnapshot) throws IOException {
        Path raw = dir.resolve("expected.raw");
        Files.deleteIfExists(raw);
        if (qemuSnapshot != null) {
            Qemu.ok(dir, "qemu-img", "convert", "-l", qemuSnapshot, "-O", "raw", image, raw);
        } else {
            Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", image, raw);
        }
        byte[] expected = Files.readAllBytes(raw);
        var opener = Imago.opener().path(image);
        options.forEach(opener::option);
        try (Image img = opener.open()) {
            assertEquals("qcow2", img.format());
            assertEquals(expected.length, img.size(), "size");
            byte[] actual = readAll(img);
            assertTrue(java.util.Arrays.equals(expected, actual), () -> "content differs at byte "
                    + java.util.Arrays.mismatch(expected, actual));
            if (qemuSnapshot != null) {
                return;
            }
            List<QemuMap.Entry> qemu = QemuMap.parse(Qemu.ok(dir, "qemu-img", "map", "--output=json", image));
            List<Extent> ours = QemuReads.mergedExtents(img);
            List<String> q = qemu.stream().map(Qcow2DifferentialTest::describe).toList();
            List<QemuMap.Entry> converted = ours.stream().map(e -> new QemuMap.Entry(e.offset(), e.length(), e.depth(),
                    e.present(), e.zero(), e.data(), e.hostOffset().orElse(-1))).toList();
            List<String> o = converted.stream().map(Qcow2DifferentialTest::describe).toList();
            assertEquals(String.join("\n", q), String.join("\n", o), "map of " + image);
        }
    }

    static String describe(QemuMap.Entry e) {
        return describe(e.start(), e.length(), e.depth(), e.present(), e.zero(), e.data(), e.offset());
    }

    static String describe(long start, long length, int depth, boolean present, boolean zero, boolean data,
            long off) {
        return start + "+" + length + " d" + depth + (present ? " P" : " -") + (zero ? "Z" : "-") + (data ? "D" : "-")
                + (off >= 0 ? " @" + off : "");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void readsAndMapsLikeQemu(Case c, @TempDir Path dir) throws IOException {
        Qemu.require();
        Path image = build(dir, c);
        compare(dir, image, Map.of(), null);
    }

    /** Seeded random qemu-io workloads (writes, zero writes with and without unmap, discards) on a few layouts. */
    @ParameterizedTest(name = "seed {0}")
    @org.junit.jupiter.params.provider.ValueSource(longs = {1, 2, 3, 4, 5, 6})
    void randomWorkloadsReadAndMapLikeQemu(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        java.util.Random r = new java.util.Random(seed);
        int[] sizes = {512, 4096, 16384, 65536};
        int cs = sizes[r.nextInt(sizes.length)];
        boolean extL2 = cs >= 16384 && r.nextBoolean();
        String compat = !extL2 && r.nextInt(4) == 0 ? "0.10" : "1.1";
        Case c = new Case(cs, compat, 16, extL2, null, null, null, null);
        long size = 64L * cs + 512 * r.nextInt(4);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options(), "img.qcow2", size);
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            long off = 512L * r.nextInt((int) (size / 512));
            long len = Math.min(size - off, 512L * (1 + r.nextInt(4 * cs / 512)));
            ops.add(switch (r.nextInt(5)) {
                case 0 -> "write -z " + off + " " + len;
                case 1 -> "write -z -u " + off + " " + len;
                case 2 -> "discard " + off + " " + len;
                default -> "write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " " + len;
            });
        }
        qemuIo(dir, "img.qcow2", "qcow2", ops);
        compare(dir, dir.resolve("img.qcow2"), Map.of(), null);
    }

    @Test
    void smallL2CacheReadsTheSame(@TempDir Path dir) throws IOException {
        Qemu.require();
        Case c = new Case(512, "1.1", 16, false, null, null, null, null);
        Path image = build(dir, c);
        compare(dir, image, Map.of("l2-cache-size", "512"), null);
    }

    @Test
    void snapshotsAreListedAndOpened(@TempDir Path dir) throws IOException {
        Qemu.require();
        int cs = 65536;
        long size = sizeFor(cs);
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "img.qcow2", size);
        qemuIo(dir, "img.qcow2", "qcow2", List.of("write -P 0x61 0 128k", "write -P 0x62 300k 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "first", "img.qcow2");
        qemuIo(dir, "img.qcow2", "qcow2", List.of("write -P 0x63 64k 128k", "write -z 300k 64k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "second", "img.qcow2");
        Qemu.ok(dir, "qemu-img", "resize", "img.qcow2", size + 2 * cs);
        qemuIo(dir, "img.qcow2", "qcow2", List.of("write -P 0x64 0 4k"));
        Path image = dir.resolve("img.qcow2");
        compare(dir, image, Map.of(), null);
        try (Image img = Imago.open(image)) {
            List<SnapshotInfo> s = img.info().snapshots();
            assertEquals(List.of("1", "2"), s.stream().map(SnapshotInfo::id).toList());
            assertEquals(List.of("first", "second"), s.stream().map(SnapshotInfo::name).toList());
            assertTrue(s.get(0).dateSec() > 0);
        }
        // by name and by id; the snapshot's disk size is the size when it was taken
        compareSnapshot(dir, image, "first", size);
        compareSnapshot(dir, image, "2", size);
        var e = org.junit.jupiter.api.Assertions.assertThrows(imago.api.ImageException.class,
                () -> Imago.opener().path(image).snapshot("nope").open());
        assertTrue(e.getMessage().contains("nope"), e.getMessage());
    }

    private static void compareSnapshot(Path dir, Path image, String snapshot, long size) throws IOException {
        Path raw = dir.resolve("snap.raw");
        Files.deleteIfExists(raw);
        Qemu.ok(dir, "qemu-img", "convert", "-l", snapshot.equals("2") ? "snapshot.id=2" : "snapshot.name=" + snapshot,
                "-O", "raw", image, raw);
        byte[] expected = Files.readAllBytes(raw);
        try (Image img = Imago.opener().path(image).snapshot(snapshot).open()) {
            assertEquals(size, img.size());
            byte[] actual = readAll(img);
            // qemu converts a snapshot at the current size; the snapshot's own size is a prefix
            byte[] prefix = java.util.Arrays.copyOf(expected, (int) size);
            assertArrayEquals(prefix, actual);
        }
    }

    @Test
    void infoMatchesQemuFormatSpecific(@TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "1M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "lazy_refcounts=on,refcount_bits=8,extended_l2=on,compression_type=zstd,data_file=d.raw,data_file_raw=on",
                "v3.qcow2", "1M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "b.raw", "1M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "b.raw", "-F", "raw", "c.qcow2");
        for (String name : List.of("v2.qcow2", "v3.qcow2", "c.qcow2")) {
            String json = Qemu.ok(dir, "qemu-img", "info", "--output=json", name);
            String data = json.substring(json.indexOf("\"data\": {") + 9);
            data = data.substring(0, data.indexOf('}'));
            StringBuilder expected = new StringBuilder();
            for (String line : data.split(",")) {
                String t = line.strip();
                if (!t.isEmpty()) {
                    expected.append(t.replace("\"", "").replace(": ", "=")).append(';');
                }
            }
            try (Image img = Imago.open(dir.resolve(name))) {
                StringBuilder actual = new StringBuilder();
                img.info().formatSpecific().forEach((k, v) -> actual.append(k).append('=').append(v).append(';'));
                assertEquals(expected.toString(), actual.toString(), name);
                assertEquals(65536, img.info().clusterSize().orElseThrow());
                if (name.equals("c.qcow2")) {
                    assertEquals("b.raw", img.info().backingFilename().orElseThrow());
                    assertEquals("raw", img.info().backingFormat().orElseThrow());
                }
            }
        }
    }
}
