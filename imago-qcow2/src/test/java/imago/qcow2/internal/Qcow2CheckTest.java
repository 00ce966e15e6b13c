package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.Image;
import imago.api.Repair;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Differential tests of {@code check}: images made by qemu-img and damaged byte by byte here must get
 * the same counts and exit status from imago as from {@code qemu-img check --output=json}; after
 * {@code -r all} by imago, both tools find the image clean and its guest content equals what qemu-img's
 * own repair of a copy keeps.
 */
class Qcow2CheckTest {
    private static final Pattern FIELD = Pattern.compile("\"([a-z-]+)\": (\\d+|\"[^\"]*\")");

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** An edit of a qemu-made image. */
    @FunctionalInterface
    interface Damage {
        void apply(QcowBytes q) throws IOException;
    }

    /**
     * One damaged image.
     *
     * @param name what the damage is
     * @param options qemu-img create options
     * @param snapshot whether to take an internal snapshot before the second write
     * @param damage the edit
     */
    record Case(String name, String options, boolean snapshot, Damage damage) {
        @Override
        public String toString() {
            return name + " [" + options + (snapshot ? ", snapshot" : "") + "]";
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        String base = "cluster_size=4096";
        out.add(new Case("clean", base, false, q -> { }));
        out.add(new Case("clean with snapshot", base, true, q -> { }));
        out.add(new Case("clean v2", "compat=0.10,cluster_size=65536", true, q -> { }));
        out.add(new Case("clean extended L2", "extended_l2=on,cluster_size=65536", false, q -> { }));
        String ext = "extended_l2=on,cluster_size=65536";
        out.add(new Case("extended L2, subcluster allocated and zero", ext, false,
                q -> q.bitmap(0, q.bitmap(0) | (q.bitmap(0) << 32))));
        out.add(new Case("extended L2, unallocated cluster with allocated subclusters", ext, false,
                q -> q.bitmap(100, 1)));
        out.add(new Case("extended L2, leak", ext, false, q -> q.l2(16, 0)));
        out.add(new Case("compressed cluster with COPIED", base, false, q -> q.l2(512, q.l2(512) | QcowBytes.COPIED)));
        out.add(new Case("compressed cluster with refcount zero", base, false,
                q -> q.refcount((q.l2(512) & ((1L << 54) - 1)) >>> q.clusterBits, 0)));
        out.add(new Case("compressed clusters sharing a host range", base, false, q -> q.l2(513, q.l2(512))));
        out.add(new Case("clean with data file", base + ",data_file=data.bin", false, q -> { }));
        out.add(new Case("data file, L2 entry cleared", base + ",data_file=data.bin", false, q -> q.l2(1, 0)));
        out.add(new Case("data file, COPIED missing", base + ",data_file=data.bin", false,
                q -> q.l2(0, q.l2(0) & ~QcowBytes.COPIED)));
        out.add(new Case("clean with bitmap", base + ",bitmap", false, q -> { }));
        out.add(new Case("bitmap, leak", base + ",bitmap", false, q -> q.l2(1, 0)));
        out.add(new Case("leaked clusters (L2 entry cleared)", base, false, q -> q.l2(1, 0)));
        out.add(new Case("leaked cluster (refcount on a free cluster)", base, false,
                q -> q.refcount(q.growFile(), 1)));
        out.add(new Case("refcount higher than references", base, false,
                q -> q.refcount(q.dataCluster(0), 2)));
        out.add(new Case("refcount too low (shared with snapshot)", base, true,
                q -> q.refcount(q.dataCluster(0), 1)));
        out.add(new Case("refcount zero for a data cluster", base, false, q -> q.refcount(q.dataCluster(2), 0)));
        out.add(new Case("refcount zero for an L2 table", base, false,
                q -> q.refcount((q.l1(0) & QcowBytes.OFFSET_MASK) >>> q.clusterBits, 0)));
        out.add(new Case("refcount zero for the L1 table", base, false,
                q -> q.refcount(q.l1Offset >>> q.clusterBits, 0)));
        out.add(new Case("refblock missing", base, false, q -> q.reftable(0, 0)));
        out.add(new Case("refblock unaligned", base, false, q -> q.reftable(0, q.reftable(0) + 512)));
        out.add(new Case("refblock past the end of the file", base, false,
                q -> q.reftable(0, (q.fileClusters() + 2) << q.clusterBits)));
        out.add(new Case("refblock entry with reserved bits", base, false, q -> q.reftable(0, q.reftable(0) | 1)));
        out.add(new Case("COPIED missing on data cluster", base, false, q -> q.l2(0, q.l2(0) & ~QcowBytes.COPIED)));
        out.add(new Case("COPIED missing on L1 entry", base, false, q -> q.l1(0, q.l1(0) & ~QcowBytes.COPIED)));
        out.add(new Case("COPIED set on shared cluster", base, true, q -> q.l2(0, q.l2(0) | QcowBytes.COPIED)));
        out.add(new Case("L2 entry pointing at the refcount table", base, false,
                q -> q.l2(1, q.reftableOffset | QcowBytes.COPIED)));
        out.add(new Case("L2 entry pointing at the header", base, false, q -> q.l2(1, QcowBytes.COPIED)));
        out.add(new Case("two L2 entries sharing a cluster", base, false, q -> q.l2(1, q.l2(0))));
        out.add(new Case("L2 entry past the end of the file", base, false,
                q -> q.l2(1, (q.fileClusters() + 100) << q.clusterBits | QcowBytes.COPIED)));
        out.add(new Case("L2 entry unaligned", base, false, q -> q.l2(1, q.l2(1) + 512)));
        out.add(new Case("L2 entry with reserved bits", base, false, q -> q.l2(1, q.l2(1) | 2)));
        out.add(new Case("L1 entry with reserved bits", base, false, q -> q.l1(0, q.l1(0) | 2)));
        out.add(new Case("L1 table past the end of the file", base, false,
                q -> q.u64(40, (q.fileClusters() + 10) << q.clusterBits)));
        out.add(new Case("L1 table running past the end of the file", base, false,
                q -> q.u64(40, (q.fileClusters() - 1) << q.clusterBits)));
        out.add(new Case("snapshot L1 unaligned", base, true,
                q -> q.u64(q.snapshotsOffset, q.u64(q.snapshotsOffset) + 512)));
        out.add(new Case("snapshot L1 size too large", base, true, q -> q.u32(q.snapshotsOffset + 8, 0x7fffffff)));
        out.add(new Case("snapshot L1 of the largest size, far past the end of the file", base, true, q -> {
            q.u64(q.snapshotsOffset, 1L << 40);
            q.u32(q.snapshotsOffset + 8, 0x400000);
        }));
        // snapshot table damage (QEMU's qcow2_check_read_snapshot_table and qcow2_check_fix_snapshot_table)
        out.add(new Case("snapshot table offset unaligned", base, true, q -> q.u64(64, q.snapshotsOffset + 8)));
        out.add(new Case("too many snapshots", base, true, q -> q.u32(60, 65537)));
        out.add(new Case("snapshot count one more than the table holds", base, true, q -> q.u32(60, 2)));
        out.add(new Case("too much extra data in a snapshot table entry", base, true,
                q -> q.u32(q.snapshotsOffset + 36, 1025)));
        out.add(new Case("snapshot table entry without a disk size", base, true,
                q -> q.u32(q.snapshotsOffset + 36, 8)));
        out.add(new Case("snapshot table in the cluster after the end of the file", base, true,
                q -> q.u64(64, q.fileClusters() << q.clusterBits)));
        out.add(new Case("snapshot table entry cut by the end of the file in its name", base, true,
                q -> q.cutSnapshotTable(Qcow2Snapshot.FIXED + 24 + 1)));
        out.add(new Case("snapshot table entry cut by the end of the file in its extra data", base, true,
                q -> q.cutSnapshotTable(Qcow2Snapshot.FIXED + 10)));
        out.add(new Case("snapshot table entry cut by the end of the file in its fixed part", base, true,
                q -> q.cutSnapshotTable(20)));
        out.add(new Case("snapshot L1 table far past the end of the file", base, true,
                q -> q.u64(q.snapshotsOffset, 1L << 40)));
        out.add(new Case("snapshot table entry running far past the end of the file", base, true,
                q -> q.u16(q.snapshotsOffset + 14, 60000)));
        out.add(new Case("snapshot table of the most entries, all but one empty", base, true, q -> q.u32(60, 65536)));
        out.add(new Case("snapshot table larger than 64 MiB", base, true, q -> {
            // entries with the longest id and name and the most extra data: entry 508 ends past 64 MiB
            java.nio.ByteBuffer e = java.nio.ByteBuffer.allocate(Qcow2Snapshot.FIXED)
                    .putShort(12, (short) 0xFFFF).putShort(14, (short) 0xFFFF).putInt(36, Qcow2Snapshot.MAX_EXTRA);
            long at = q.snapshotEntry(1);
            for (int i = 1; i < 520; i++) {
                q.write(at, e.array());
                at += (Qcow2Snapshot.FIXED + Qcow2Snapshot.MAX_EXTRA + 2 * 0xFFFF + 7) & ~7;
            }
            q.u32(60, 520);
        }));
        out.add(new Case("dirty bit with leak", base + ",lazy_refcounts=on", false, q -> {
            q.u64(72, q.u64(72) | 1);
            q.l2(1, 0);
        }));
        out.add(new Case("corrupt bit, clean otherwise", base, false, q -> q.u64(72, q.u64(72) | 2)));
        for (int bits : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            String o = base + ",refcount_bits=" + bits;
            out.add(new Case("width " + bits + " clean", o, false, q -> { }));
            out.add(new Case("width " + bits + " leak", o, false, q -> q.l2(2, 0)));
            out.add(new Case("width " + bits + " refcount zero", o, false, q -> q.refcount(q.dataCluster(0), 0)));
            if (bits > 1) {
                out.add(new Case("width " + bits + " refcount too high", o, false,
                        q -> q.refcount(q.dataCluster(1), (1L << Math.min(bits, 62)) - 1)));
            }
        }
        return out.stream();
    }

    /**
     * Damage whose check matches qemu-img's but whose repair differs on purpose: qemu-img frees the old snapshot
     * table's clusters 1 TiB past the end by first growing the refcount structures to reach them (a sparse file of
     * 1 TiB, image end offset there); imago leaves them (no refcount to drop), with the same counts otherwise.
     */
    static Stream<Case> checkOnlyCases() {
        List<Case> out = new ArrayList<>();
        String base = "cluster_size=4096";
        // qemu-img -r all frees the old table's clusters far past the end, growing the refcount table to 1 TiB
        out.add(new Case("snapshot table far past the end of the file", base, true, q -> q.u64(64, 1L << 40)));
        return out.stream();
    }

    private Path make(Case c, String name) throws IOException {
        Path img = dir.resolve(name);
        boolean bitmap = c.options().endsWith(",bitmap");
        String options = bitmap ? c.options().substring(0, c.options().length() - ",bitmap".length()) : c.options();
        boolean dataFile = options.contains("data_file");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options, img, "16M");
        if (bitmap) {
            Qemu.ok(dir, "qemu-img", "bitmap", "--add", img, "b0");
        }
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 12k", "-c", dataFile ? "write -P 0x33 2M 64k"
                : "write -c -P 0x33 2M 64k", img);
        if (c.snapshot()) {
            Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
        }
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1M 8k", "-c", "write -P 0x44 4k 4k", img);
        try (QcowBytes q = new QcowBytes(img)) {
            c.damage().apply(q);
        }
        return img;
    }

    /** qemu-img check's JSON fields (numbers as longs) and exit status. */
    record QemuCheck(int status, Map<String, Long> fields, String raw) {
    }

    private QemuCheck qemuCheck(Path img, String... repair) {
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "check", "--output=json", "-f", "qcow2"));
        cmd.addAll(List.of(repair));
        cmd.add(img);
        Qemu.Output o = Qemu.run(dir, cmd.toArray());
        Map<String, Long> fields = new LinkedHashMap<>();
        Matcher m = FIELD.matcher(o.out());
        while (m.find()) {
            if (!m.group(2).startsWith("\"")) {
                fields.put(m.group(1), Long.parseLong(m.group(2)));
            }
        }
        return new QemuCheck(o.status(), fields, o.out() + o.err());
    }

    static CheckReport imagoCheck(Path img, Repair repair) throws IOException {
        try (Image image = Imago.opener().path(img).format("qcow2").forCheck(true).writable(repair != Repair.NONE)
                .open()) {
            return image.check(repair);
        }
    }

    static Map<String, Long> fields(CheckReport r) {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("check-errors", r.checkErrors());
        put(m, "image-end-offset", r.imageEndOffset());
        put(m, "corruptions", r.corruptions());
        put(m, "leaks", r.leaks());
        put(m, "corruptions-fixed", r.corruptionsFixed());
        put(m, "leaks-fixed", r.leaksFixed());
        put(m, "total-clusters", r.totalClusters());
        put(m, "allocated-clusters", r.allocatedClusters());
        put(m, "fragmented-clusters", r.fragmentedClusters());
        put(m, "compressed-clusters", r.compressedClusters());
        return m;
    }

    private static void put(Map<String, Long> m, String k, long v) {
        if (v != 0) {
            m.put(k, v);
        }
    }

    private static void assertSame(QemuCheck q, CheckReport r, String what) {
        if (q.fields().isEmpty()) {
            // qemu-img could not finish: "Check failed", no report
            assertTrue(r.failure().isPresent(), () -> what + ": qemu-img failed but imago did not\n" + q.raw());
            assertEquals(1, q.status(), q.raw());
            assertEquals(1, r.exitStatus());
            return;
        }
        assertTrue(r.failure().isEmpty(), () -> what + ": imago failed: " + r.failure() + "\n" + q.raw());
        assertEquals(new java.util.TreeMap<>(q.fields()), new java.util.TreeMap<>(fields(r)),
                () -> what + "\nqemu-img:\n" + q.raw() + "\nimago:\n" + String.join("\n", r.messages()));
        assertEquals(q.status(), r.exitStatus(), () -> what + ": exit status\n" + q.raw());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource({"cases", "checkOnlyCases"})
    void checkMatchesQemu(Case c) throws IOException {
        Path img = make(c, "a.qcow2");
        assertSame(qemuCheck(img), imagoCheck(img, Repair.NONE), "check");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void repairMatchesQemu(Case c) throws IOException {
        Path a = make(c, "a.qcow2");
        Path b = dir.resolve("b.qcow2");
        Files.copy(a, b);
        for (String mode : new String[] {"leaks", "all"}) {
            Path ma = dir.resolve("ma-" + mode + ".qcow2");
            Path mb = dir.resolve("mb-" + mode + ".qcow2");
            Files.copy(a, ma);
            Files.copy(a, mb);
            QemuCheck byQemu = qemuCheck(mb, "-r", mode);
            CheckReport byImago = imagoCheck(ma, mode.equals("all") ? Repair.ALL : Repair.LEAKS);
            // where qemu-img's repair fails (on its own overlap checks), imago's fails the same way, or succeeds
            // where imago's rebuild keeps clear of the old structures QEMU's trips over
            boolean qemuGaveUp = mode.equals("all") && byQemu.fields().isEmpty() && byImago.failure().isEmpty();
            if (!qemuGaveUp) {
                assertSame(byQemu, byImago, "-r " + mode);
            }
            if (mode.equals("all") && (byQemu.status() == 0 || qemuGaveUp)) {
                // (and where imago succeeds alone, it keeps the guest content of the damaged image)
                assertTrue(byImago.clean(), () -> "imago's repair: " + byImago + "\n" + byQemu.raw());
                QemuCheck after = qemuCheck(ma);
                assertEquals(0, after.status(), () -> "qemu-img check after imago's repair:\n" + after.raw()
                        + "\nimago's repair said:\n" + String.join("\n", byImago.messages()));
                CheckReport again = imagoCheck(ma, Repair.NONE);
                assertTrue(again.clean(), () -> String.join("\n", again.messages()));
                Path reference = qemuGaveUp ? a : mb;
                Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", ma, reference);
                assertEquals(0, cmp.status(), () -> "guest content after repair: " + cmp.out() + cmp.err());
                Qemu.Output flags = Qemu.run(dir, "qemu-img", "info", "--output=json", ma);
                assertTrue(!flags.out().contains("\"corrupt\": true") && !flags.out().contains("\"dirty-flag\": true"),
                        flags.out());
            }
        }
    }

    /**
     * A snapshot table 1 TiB past the end of the file: imago's -r all fixes as many corruptions and leaks as
     * qemu-img's, and both tools find the repaired image clean with the same content, but imago's file stays
     * small (qemu-img grows its refcount structures to drop the old table's references, 1 TiB away).
     */
    @org.junit.jupiter.api.Test
    void snapshotTableFarPastTheEndIsRepairedWithoutGrowingTheFile() throws IOException {
        Case c = checkOnlyCases().filter(x -> x.name().equals("snapshot table far past the end of the file"))
                .findFirst().orElseThrow();
        Path a = make(c, "a.qcow2");
        Path b = dir.resolve("b.qcow2");
        Files.copy(a, b);
        QemuCheck byQemu = qemuCheck(b, "-r", "all");
        CheckReport byImago = imagoCheck(a, Repair.ALL);
        Map<String, Long> expected = new java.util.TreeMap<>(byQemu.fields());
        Map<String, Long> actual = new java.util.TreeMap<>(fields(byImago));
        assertTrue(expected.remove("image-end-offset") > 1L << 40, byQemu.raw());
        assertTrue(actual.remove("image-end-offset") < Files.size(a) + 4096, byImago::toString);
        assertEquals(expected, actual, () -> byQemu.raw() + "\n" + String.join("\n", byImago.messages()));
        assertEquals(0, byImago.exitStatus());
        assertEquals(0, qemuCheck(a).status());
        assertTrue(imagoCheck(a, Repair.NONE).clean());
        assertTrue(Files.size(a) < 1 << 20, "file size " + Files.size(a));
        assertEquals(0, Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", a, b).status());
    }

    /**
     * A lazy-refcount image whose writer was killed (qemu-io's sigraise 9) is dirty with refcounts that
     * miss its new clusters: a writable open repairs it first, so that imago's writes leave an image that
     * qemu-img check finds clean, with every byte written before and after.
     */
    @org.junit.jupiter.api.Test
    void dirtyImageIsRepairedOnWritableOpen() throws IOException {
        Path img = dir.resolve("dirty.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", img,
                "16M");
        Qemu.Output killed = Qemu.run(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", "-c",
                "write -P 0x22 1M 8k", "-c", "sigraise 9", img);
        assertEquals(137, killed.status(), killed::err);
        QemuCheck before = qemuCheck(img);
        assertEquals(2, before.status(), before::raw);
        assertTrue(Qemu.ok(dir, "qemu-img", "info", "--output=json", img).contains("\"dirty-flag\": true"));
        try (Image w = Imago.opener().path(img).writable(true).open()) {
            assertEquals(false, w.info().dirty());
            w.write(java.nio.ByteBuffer.wrap(new byte[4096]).put(0, (byte) 0x33), 2 << 20);
            w.write(java.nio.ByteBuffer.wrap(new byte[4096]).put(0, (byte) 0x44), 8 << 10);
        }
        QemuCheck after = qemuCheck(img);
        assertEquals(0, after.status(), after::raw);
        assertTrue(after.fields().get("leaks") == null && after.fields().get("corruptions") == null, after::raw);
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x11 0 8k", "-c", "read -P 0x44 8k 1",
                "-c", "read -P 0 8193 4095", "-c", "read -P 0x11 12k 52k", "-c", "read -P 0x22 1M 8k",
                "-c", "read -P 0x33 2M 1", img);
        assertTrue(!Qemu.ok(dir, "qemu-img", "info", "--output=json", img).contains("\"dirty-flag\": true"));
    }

    /**
     * A damaged L1 table whose entries all name one L2 table costs one walk of it, not one per entry:
     * 2 MiB clusters (256 Ki entries per table) and 1024 L1 entries, with the counts of qemu-img.
     */
    @org.junit.jupiter.api.Test
    void l1EntriesNamingOneTableCheckQuickly() throws IOException {
        Path img = dir.resolve("same-l2.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", img, "512T");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 1 0 4M", img);
        try (QcowBytes q = new QcowBytes(img)) {
            long e = q.l1(0);
            for (int i = 1; i < q.l1Size; i++) {
                q.l1(i, e);
            }
        }
        long start = System.nanoTime();
        CheckReport r = imagoCheck(img, Repair.NONE);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertSame(qemuCheck(img), r, "one L2 table named " + r.totalClusters() + " times");
        assertTrue(millis < 5000, "check took " + millis + " ms");
    }

    /** Checking is bounded by the file, not the virtual size: 2 TiB with 1 MiB of data checks at once. */
    @org.junit.jupiter.api.Test
    void hugeVirtualSizeChecksQuickly() throws IOException {
        Path img = dir.resolve("huge.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", img, "2T");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 1 0 512k", "-c", "write -P 2 1T 512k", img);
        long start = System.nanoTime();
        CheckReport r = imagoCheck(img, Repair.NONE);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(r.clean(), r::toString);
        assertSame(qemuCheck(img), r, "2 TiB image");
        assertTrue(millis < 2000, "check took " + millis + " ms");
    }

    /** A check opens no backing file: an image whose backing file is gone checks as before. */
    @org.junit.jupiter.api.Test
    void checkOpensNoBackingFile() throws IOException {
        Path base = dir.resolve("base.qcow2");
        Path top = dir.resolve("top.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", base, "16M");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 1 64k 64k", top);
        QemuCheck expected = qemuCheck(top);
        Files.delete(base);
        CheckReport r = imagoCheck(top, Repair.NONE);
        assertSame(expected, r, "backing file deleted");
        assertTrue(r.clean(), r::toString);
    }

    /** A dirty image whose damage a repair cannot fix is refused for writing, naming the damage. */
    @org.junit.jupiter.api.Test
    void dirtyImageThatCannotBeRepairedIsRefused() throws IOException {
        Path img = dir.resolve("dirty-bad.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", img,
                "16M");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", img);
        try (QcowBytes q = new QcowBytes(img)) {
            q.u64(72, q.u64(72) | 1);
            q.l2(1, q.l2(1) | 2); // reserved bits: a corruption no repair fixes
        }
        imago.api.CorruptImageException e = org.junit.jupiter.api.Assertions.assertThrows(
                imago.api.CorruptImageException.class, () -> Imago.opener().path(img).writable(true).open());
        assertTrue(e.getMessage().contains("Could not repair dirty image"), e.getMessage());
        try (Image ro = Imago.opener().path(img).open()) {
            assertTrue(ro.info().dirty());
        }
    }
}
