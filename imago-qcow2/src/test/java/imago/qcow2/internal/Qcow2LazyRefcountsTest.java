package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CheckReport;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.Repair;
import imago.api.SnapshotInfo;
import imago.api.ZeroFlag;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.probe.Imago;
import imago.testkit.FaultStorage;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Lazy refcounts (compatible bit 0), as QEMU keeps them: the dirty bit is set and synced before the first L2
 * update reaches the file, refcount blocks wait in memory while the image is dirty, and a clean close writes them
 * and clears the bit; an image left dirty is repaired by the next writable open.
 */
class Qcow2LazyRefcountsTest {
    @TempDir
    static Path dir;

    static final int SIZE = 4 << 20;
    static final int CLUSTER = 4096;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** One storage request, in order: a write (offset, bytes), a resize (to offset; data null) or a sync (-1). */
    record Event(long offset, byte[] data) {
        boolean sync() {
            return data == null && offset < 0;
        }

        boolean resize() {
            return data == null && offset >= 0;
        }
    }

    /** A growable in-memory storage that logs every write and sync. */
    static final class RecordingStorage extends FaultStorage {
        final List<Event> events = new ArrayList<>();

        RecordingStorage() {
            super("failing");
        }

        @Override
        public synchronized void write(ByteBuffer src, long offset) throws IOException {
            byte[] data = new byte[src.remaining()];
            src.duplicate().get(data);
            events.add(new Event(offset, data));
            super.write(src, offset);
        }

        @Override
        public synchronized void sync() {
            events.add(new Event(-1, null));
        }

        @Override
        public synchronized void resize(long size, Preallocation preallocation) {
            events.add(new Event(size, null));
            super.resize(size, preallocation);
        }
    }

    static RecordingStorage create(String options) throws IOException {
        RecordingStorage s = new RecordingStorage();
        CreateOptions.Builder b = CreateOptions.builder().size(SIZE);
        Qcow2CreateTest.parse(options).forEach(b::option);
        new Qcow2FormatDriver().create(s, b.build());
        s.events.clear();
        return s;
    }

    static boolean dirtyBit(byte[] file) {
        return (ByteBuffer.wrap(file).getLong(72) & Qcow2Header.INCOMPAT_DIRTY) != 0;
    }

    /** Writes that overlap host cluster {@code offset}. */
    static boolean hits(Event e, long offset) {
        return e.data() != null && e.offset() < offset + CLUSTER && e.offset() + e.data().length > offset;
    }

    static boolean nonZero(byte[] data) {
        for (byte x : data) {
            if (x != 0) {
                return true;
            }
        }
        return false;
    }

    /** Random writes (partial clusters included: copy-on-write from zeroes) into the model and the image. */
    static void writes(Image image, byte[] model, Random r, int count) throws IOException {
        for (int i = 0; i < count; i++) {
            int len = 1 + r.nextInt(40_000);
            int off = r.nextInt(SIZE - len);
            byte[] data = new byte[len];
            r.nextBytes(data);
            image.write(ByteBuffer.wrap(data), off);
            System.arraycopy(data, 0, model, off, len);
        }
    }

    /** qemu-img check without errors or leaks, and qemu-img compare equal to the model. */
    static void assertClean(byte[] file, byte[] model, String name) throws IOException {
        Path img = dir.resolve(name + ".qcow2");
        Files.write(img, file);
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        Path raw = dir.resolve(name + ".raw");
        Files.write(raw, model);
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, raw);
        assertEquals(0, cmp.status(), () -> "qemu-img compare:\n" + cmp.out() + cmp.err());
    }

    /**
     * The header's dirty bit is written and synced before any L2 entry reaches the file; the refcount block is not
     * written while the image is open (it waits for the close), and the clean close leaves an image with the bit
     * clear that qemu-img finds clean and equal.
     */
    @Test
    void dirtyBeforeTheFirstL2UpdateAndCleanAfterClose() throws IOException {
        RecordingStorage s = create("cluster_size=4096,lazy_refcounts=on");
        ByteBuffer h = ByteBuffer.wrap(s.content());
        long refblock = h.getLong((int) h.getLong(48));
        byte[] model = new byte[SIZE];
        Random r = new Random(3);
        int flushedAt;
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            assertFalse(image.info().dirty());
            writes(image, model, r, 40);
            image.flush();
            // the dirty bit is on disk, and imago info says so, while the session lasts
            assertTrue(dirtyBit(s.content()));
            assertTrue(image.info().dirty());
            writes(image, model, r, 40);
            image.flush();
            flushedAt = s.events.size();
            assertTrue(s.events.stream().noneMatch(e -> hits(e, refblock)), "a refcount block was written before close");
            // what a crash now would leave: dirty; qemu-img check -r all repairs it
            Path crashed = dir.resolve("lazy-open.qcow2");
            Files.write(crashed, s.content());
            assertTrue(Qemu.ok(dir, "qemu-img", "info", "--output=json", crashed).contains("\"dirty-flag\": true"));
            assertEquals(2, Qemu.run(dir, "qemu-img", "check", crashed).status());
            Qemu.Output repair = Qemu.run(dir, "qemu-img", "check", "-r", "all", crashed);
            assertEquals(0, repair.status(), () -> repair.out() + repair.err());
            assertClean(Files.readAllBytes(crashed), model, "lazy-open-repaired");
        }
        byte[] file = s.content();
        assertFalse(dirtyBit(file));
        assertTrue(s.events.subList(flushedAt, s.events.size()).stream().anyMatch(e -> hits(e, refblock)),
                "the close wrote no refcount block");
        assertClean(file, model, "lazy-closed");

        // the order: the write that sets the dirty bit, then a sync, then the first L2 table write with entries
        ByteBuffer f = ByteBuffer.wrap(file);
        long l1 = f.getLong(40);
        List<Long> l2Tables = new ArrayList<>();
        for (int i = 0; i < f.getInt(36); i++) {
            long e = f.getLong((int) (l1 + 8L * i)) & Qcow2Entries.OFFSET_MASK;
            if (e != 0) {
                l2Tables.add(e);
            }
        }
        assertFalse(l2Tables.isEmpty());
        int firstL2 = -1;
        for (int i = 0; i < s.events.size() && firstL2 < 0; i++) {
            Event e = s.events.get(i);
            if (e.data() != null && nonZero(e.data()) && l2Tables.stream().anyMatch(t -> hits(e, t))) {
                firstL2 = i;
            }
        }
        assertTrue(firstL2 > 0, "no L2 update written");
        int marked = -1;
        for (int i = 0; i < firstL2; i++) {
            Event e = s.events.get(i);
            if (e.data() != null && e.offset() == 72 && e.data().length == 8
                    && (ByteBuffer.wrap(e.data()).getLong() & Qcow2Header.INCOMPAT_DIRTY) != 0) {
                marked = i;
            }
        }
        assertTrue(marked >= 0, "the dirty bit was not written before the first L2 update");
        assertTrue(s.events.subList(marked, firstL2).stream().anyMatch(Event::sync),
                "the dirty bit was not synced before the first L2 update");
        // the bit is cleared once, last, after everything else is synced
        Event last = s.events.get(s.events.size() - 2);
        assertEquals(72, last.offset());
        assertEquals(0, ByteBuffer.wrap(last.data()).getLong() & Qcow2Header.INCOMPAT_DIRTY);
        assertTrue(s.events.get(s.events.size() - 3).sync() && s.events.getLast().sync());
    }

    /**
     * What lazy refcounts are for: allocating writes flushed one by one (64 KiB clusters, 1 MiB writes) take about
     * half the syncs and none of the refcount block writes of the ordered mode, as with QEMU (qemu-img bench -w
     * --flush-interval=1: 262 fdatasync calls instead of 515 for 256 writes); the file, grown ahead meanwhile, ends
     * after its last cluster in use once closed, as the ordered mode's does.
     */
    @Test
    void flushedAllocatingWritesTakeFewerSyncs() throws IOException {
        int[] syncs = new int[2];
        long[] lengths = new long[2];
        for (int lazy = 0; lazy < 2; lazy++) {
            RecordingStorage s = new RecordingStorage();
            CreateOptions.Builder b = CreateOptions.builder().size(32 << 20);
            if (lazy == 1) {
                b.option("lazy_refcounts", "on");
            }
            new Qcow2FormatDriver().create(s, b.build());
            s.events.clear();
            ByteBuffer data = ByteBuffer.allocate(1 << 20);
            try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)),
                    s).writable(true).build()) {
                for (int i = 0; i < 32; i++) {
                    image.write(data.clear().put(0, (byte) (i + 1)), (long) i << 20);
                    image.flush();
                }
            }
            syncs[lazy] = (int) s.events.stream().filter(Event::sync).count();
            lengths[lazy] = s.size();
            assertFalse(dirtyBit(s.content()));
        }
        int eager = syncs[0];
        int lazy = syncs[1];
        assertTrue(lazy * 4 < eager * 3, () -> "syncs: lazy " + lazy + ", ordered " + eager);
        assertEquals(lengths[0], lengths[1]);
    }

    /** Without the lazy refcounts bit nothing changes: the header is never written, refcounts go first. */
    @Test
    void withoutLazyRefcountsTheHeaderStaysAsItIs() throws IOException {
        RecordingStorage s = create("cluster_size=4096");
        ByteBuffer h = ByteBuffer.wrap(s.content());
        long refblock = h.getLong((int) h.getLong(48));
        byte[] model = new byte[SIZE];
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            writes(image, model, new Random(4), 30);
            image.flush();
            assertFalse(image.info().dirty());
            assertTrue(s.events.stream().anyMatch(e -> hits(e, refblock)));
        }
        assertTrue(s.events.stream().noneMatch(e -> e.data() != null && e.offset() < 104));
        assertClean(s.content(), model, "eager-closed");
    }

    /**
     * As QEMU (checked with qemu-io: discard, write -z, flush, sigraise 9), zero writes and discards alone never
     * mark a lazy image dirty: they allocate nothing, so the refcounts they drop are written in order as usual.
     */
    @Test
    void zeroWritesAndDiscardsAloneLeaveTheImageClean() throws IOException {
        RecordingStorage s = create("cluster_size=4096,lazy_refcounts=on");
        byte[] model = new byte[SIZE];
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            writes(image, model, new Random(9), 20);
        }
        assertFalse(dirtyBit(s.content()));
        s.events.clear();
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            Random r = new Random(10);
            for (int i = 0; i < 20; i++) {
                // whole clusters: a partial one would take explicit zeroes, an allocating write
                int off = r.nextInt(SIZE / CLUSTER - 4) * CLUSTER;
                int len = CLUSTER * (1 + r.nextInt(4));
                if (i % 2 == 0) {
                    image.discard(off, len);
                } else {
                    image.writeZeroes(off, len, Set.of(ZeroFlag.MAY_UNMAP));
                }
                Arrays.fill(model, off, off + len, (byte) 0);
                if (i % 5 == 4) {
                    image.flush();
                }
            }
        }
        assertTrue(s.events.stream().noneMatch(e -> e.data() != null && e.offset() < 104), "the header was written");
        assertClean(s.content(), model, "lazy-zeroed");
    }

    /**
     * An image imago left dirty (the power went out after a flush) is repaired by imago's next writable open: the
     * flushed data stays, the dirty bit goes, and a second session on it closes clean too.
     */
    @Test
    void aDirtyImageIsRepairedByTheNextWritableOpen() throws IOException {
        RecordingStorage s = create("cluster_size=4096,lazy_refcounts=on");
        byte[] model = new byte[SIZE];
        Random r = new Random(5);
        byte[] crashed;
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            writes(image, model, r, 30);
            image.flush();
            crashed = s.content();
        }
        assertTrue(dirtyBit(crashed));
        RecordingStorage again = new RecordingStorage();
        again.write(ByteBuffer.wrap(crashed), 0);
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(again, OpenContext.of(true)),
                again).writable(true).build()) {
            assertFalse(image.info().dirty());
            ByteBuffer all = ByteBuffer.allocate(SIZE);
            image.read(all, 0);
            assertArrayEquals(model, all.array());
            writes(image, model, r, 10);
        }
        assertFalse(dirtyBit(again.content()));
        assertClean(again.content(), model, "lazy-reopened");
    }

    /**
     * The worst power loss for copy-on-write and file growth: at every write and sync of a session of partial- and
     * whole-cluster writes over a backing file (flushed now and then), the file keeps what was synced plus every
     * unsynced metadata write (header, L1 and L2 tables, refcounts) and none of the unsynced data or growth.
     * Repaired by imago's writable open, it must still read every byte the guest flushed and did not write since:
     * the copied parts of new clusters and the file's growth reach the disk before the L2 entries that point into
     * them (an entry past the end of the file cannot be repaired), though refcounts no longer need that sync.
     */
    @Test
    void copyOnWriteDataIsSyncedBeforeItsL2Entries() throws IOException {
        int size = 512 << 10;
        Path basePath = dir.resolve("lazy-cow-base.raw");
        byte[] base = new byte[size];
        new Random(7).nextBytes(base);
        Files.write(basePath, base);
        RecordingStorage s = new RecordingStorage();
        new Qcow2FormatDriver().create(s, CreateOptions.builder().size(size).option("cluster_size", "4096")
                .option("lazy_refcounts", "on").backingFile(basePath.getFileName().toString()).backingFormat("raw")
                .build());
        byte[] start = s.content();
        s.events.clear();
        // after each flush (event index): the content then, and what the guest wrote in the round before it
        List<Integer> flushes = new ArrayList<>();
        List<byte[]> models = new ArrayList<>();
        List<boolean[]> rounds = new ArrayList<>();
        byte[] model = base.clone();
        Random r = new Random(8);
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).backing(Imago.opener().path(basePath).format("raw").open(), true)
                .build()) {
            for (int round = 0; round < 4; round++) {
                boolean[] touched = new boolean[size];
                for (int i = 0; i < 6; i++) {
                    int len = 1 + r.nextInt(3000);
                    int off = r.nextInt(size - len);
                    if (i == 3 || round >= 2) {
                        // whole clusters (the last rounds only): nothing to copy, but the file grows
                        len = CLUSTER * (1 + r.nextInt(3));
                        off = r.nextInt((size - len) / CLUSTER) * CLUSTER;
                    }
                    byte[] data = new byte[len];
                    Arrays.fill(data, (byte) (round * 6 + i + 1));
                    image.write(ByteBuffer.wrap(data), off);
                    System.arraycopy(data, 0, model, off, len);
                    Arrays.fill(touched, off, off + len, true);
                }
                rounds.add(touched);
                image.flush();
                flushes.add(s.events.size());
                models.add(model.clone());
            }
        }
        assertFalse(dirtyBit(s.content()));
        // metadata clusters: cluster 0, the L1 table, the refcount table and blocks, the L2 tables
        ByteBuffer f = ByteBuffer.wrap(s.content());
        Set<Long> metadata = new HashSet<>(List.of(0L, f.getLong(40) / CLUSTER,
                f.getLong(48) / CLUSTER, f.getLong((int) f.getLong(48)) / CLUSTER));
        for (int i = 0; i < f.getInt(36); i++) {
            long e = f.getLong((int) (f.getLong(40) + 8L * i)) & Qcow2Entries.OFFSET_MASK;
            if (e != 0) {
                metadata.add(e / CLUSTER);
            }
        }
        int checked = 0;
        byte[] durable = start;
        List<Event> unsynced = new ArrayList<>();
        for (int at = 0; at < s.events.size(); at++) {
            int done = 0;
            while (done < flushes.size() && flushes.get(done) <= at) {
                done++;
            }
            Event e = s.events.get(at);
            // the power fails just before event 'at' (once every flush has passed, there is nothing more to owe)
            if (done < flushes.size()) {
                byte[] crashed = durable;
                for (Event u : unsynced) {
                    if (!u.resize() && metadata.contains(u.offset() / CLUSTER)) {
                        crashed = apply(crashed, u);
                    }
                }
                if (dirtyBit(crashed)) {
                    crashed = Qcow2FaultTest.repairByOpening(crashed);
                }
                // owed: the content at the last flush, except what the round being flushed wrote
                byte[] flushed = done == 0 ? base : models.get(done - 1);
                Qcow2FaultTest.assertFlushedKept("power loss before event " + at, crashed, basePath, flushed,
                        rounds.get(done));
                checked++;
            }
            durable = afterEvent(durable, unsynced, e);
        }
        assertTrue(checked > 20, "only " + checked + " crash points");
    }

    /**
     * Snapshot create, apply and delete on a lazy image made dirty by guest writes: power loss at every write and
     * sync (two random sets of the unsynced writes each) leaves a file that imago's repair ({@code -r all}) makes
     * clean, whose snapshot table lists the snapshots as before or after the cut operation, each reading as taken,
     * and whose active image reads as before or after it (except what a cut guest write wrote); the session
     * itself ends clean.
     */
    @Test
    void snapshotOperationsOnADirtyImageSurviveAnyCrash() throws IOException {
        int size = 256 << 10;
        RecordingStorage s = new RecordingStorage();
        new Qcow2FormatDriver().create(s, CreateOptions.builder().size(size).option("cluster_size", "4096")
                .option("lazy_refcounts", "on").build());
        byte[] start = s.content();
        s.events.clear();
        List<String> ops = List.of("write", "create a", "write", "create b", "apply a", "write", "delete a", "write",
                "apply b");
        List<Qcow2FaultTest.SnapState> states = new ArrayList<>();
        states.add(new Qcow2FaultTest.SnapState(new byte[size], Map.of()));
        int[] opStart = new int[ops.size()];
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            for (int j = 0; j < ops.size(); j++) {
                opStart[j] = s.events.size();
                Qcow2FaultTest.SnapState prev = states.getLast();
                Map<String, byte[]> snaps = new HashMap<>(prev.snapshots());
                byte[] active = prev.active();
                String[] w = ops.get(j).split(" ");
                switch (w[0]) {
                    case "create" -> {
                        image.createSnapshot(w[1]);
                        snaps.put(w[1], active);
                    }
                    case "apply" -> {
                        image.applySnapshot(w[1]);
                        active = snaps.get(w[1]);
                    }
                    case "delete" -> {
                        image.deleteSnapshot(w[1]);
                        snaps.remove(w[1]);
                    }
                    default -> {
                        active = active.clone();
                        Arrays.fill(active, j * 9000, j * 9000 + 70_000, (byte) (j + 1));
                        image.write(ByteBuffer.wrap(active, j * 9000, 70_000), j * 9000);
                        image.flush();
                    }
                }
                states.add(prev.with(active, snaps));
                if (j == 0) {
                    assertTrue(dirtyBit(s.content()), "not dirty after the first write");
                }
            }
        }
        assertFalse(dirtyBit(s.content()));
        assertClean(s.content(), states.getLast().active(), "lazy-snapshots");

        byte[] durable = start;
        List<Event> unsynced = new ArrayList<>();
        int checked = 0;
        for (int at = 0; at < s.events.size(); at++) {
            int op = 0;
            while (op + 1 < ops.size() && opStart[op + 1] <= at) {
                op++;
            }
            Qcow2FaultTest.SnapState before = states.get(op);
            Qcow2FaultTest.SnapState after = states.get(op + 1);
            for (int v = 0; v < 2; v++) {
                Random r = new Random(at * 31L + v);
                byte[] crashed = durable;
                for (Event u : unsynced) {
                    if (r.nextBoolean()) {
                        crashed = apply(crashed, u);
                    }
                }
                String what = "power loss before event " + at + " during '" + ops.get(op) + "' (variant " + v + ")";
                FaultStorage f = new FaultStorage("failing");
                f.write(ByteBuffer.wrap(crashed), 0);
                CheckReport report = new Qcow2Check(f).run(Repair.ALL);
                assertTrue(report.clean(), () -> what + ": " + report);
                byte[] repaired = f.content();
                assertFalse(dirtyBit(repaired), what);
                BytesStorage b = new BytesStorage("crashed", repaired);
                Qcow2Instance layer = (Qcow2Instance) new Qcow2FormatDriver().open(b, OpenContext.of(false));
                List<String> names = layer.snapshots().stream().map(SnapshotInfo::name).toList();
                Set<String> listed = Set.copyOf(names);
                assertTrue(listed.equals(before.snapshots().keySet()) || listed.equals(after.snapshots().keySet()),
                        () -> what + ": snapshots " + names);
                for (String name : names) {
                    byte[] expected = before.snapshots().containsKey(name) ? before.snapshots().get(name)
                            : after.snapshots().get(name);
                    assertArrayEquals(expected, read(b, Map.of("snapshot", name)), what + ": snapshot "
                            + name);
                }
                byte[] active = read(b, Map.of());
                boolean guestWrite = ops.get(op).equals("write");
                for (int k = 0; k < size; k++) {
                    if (guestWrite && k >= op * 9000 && k < op * 9000 + 70_000) {
                        continue;
                    }
                    if (active[k] != before.active()[k] && active[k] != after.active()[k]) {
                        throw new AssertionError(what + ": byte " + k + " reads " + active[k] + ", neither as before ("
                                + before.active()[k] + ") nor as after (" + after.active()[k] + ")");
                    }
                }
                checked++;
            }
            Event e = s.events.get(at);
            durable = afterEvent(durable, unsynced, e);
        }
        assertTrue(checked > 100, "only " + checked + " crashed files");
    }

    private static byte[] read(BytesStorage b, Map<String, String> options) throws IOException {
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(b,
                new OpenContext(false, false, options)), b).build()) {
            ByteBuffer all = ByteBuffer.allocate((int) image.size());
            image.read(all, 0);
            return all.array();
        }
    }

    /** The durable file after event {@code e}: a sync makes the unsynced writes durable, another event joins them. */
    private static byte[] afterEvent(byte[] durable, List<Event> unsynced, Event e) {
        if (!e.sync()) {
            unsynced.add(e);
            return durable;
        }
        byte[] file = durable;
        for (Event u : unsynced) {
            file = apply(file, u);
        }
        unsynced.clear();
        return file;
    }

    private static byte[] apply(byte[] file, Event e) {
        if (e.resize()) {
            return Arrays.copyOf(file, (int) e.offset());
        }
        byte[] out = Arrays.copyOf(file, (int) Math.max(file.length, e.offset() + e.data().length));
        System.arraycopy(e.data(), 0, out, (int) e.offset(), e.data().length);
        return out;
    }

    /**
     * A check through a writable image that lazy refcounts made dirty sees the refcounts kept in memory (no
     * errors), and a repairing check leaves it clean on disk; later writes mark it dirty again.
     */
    @Test
    void checkWhileDirty() throws IOException {
        RecordingStorage s = create("cluster_size=4096,lazy_refcounts=on");
        byte[] model = new byte[SIZE];
        Random r = new Random(6);
        try (Image image = LayeredImage.builder("qcow2", new Qcow2FormatDriver().open(s, OpenContext.of(true)), s)
                .writable(true).build()) {
            writes(image, model, r, 20);
            image.flush();
            assertTrue(dirtyBit(s.content()));
            assertTrue(image.check(Repair.NONE).clean());
            assertTrue(image.check(Repair.ALL).clean());
            assertFalse(dirtyBit(s.content()));
            assertFalse(image.info().dirty());
            writes(image, model, r, 20);
            image.flush();
            assertTrue(dirtyBit(s.content()));
        }
        assertFalse(dirtyBit(s.content()));
        assertClean(s.content(), model, "lazy-checked");
    }
}
