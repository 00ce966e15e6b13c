package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageLimitException;
import imago.api.NoSuchSnapshotException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.SnapshotInfo;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Internal snapshots created, applied and deleted by imago: after every operation {@code qemu-img check} must be
 * clean (no errors, no leaks), {@code qemu-img snapshot -l} must list imago's snapshots, and the active image and
 * every snapshot, read by qemu-img, must hold what imago had when it took them.
 */
class Qcow2SnapshotTest {
    @TempDir
    static Path dir;

    static int counter;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /**
     * One layout.
     *
     * @param options create options
     * @param backing whether the image has a raw backing file
     * @param compressed whether the image starts as qemu-img convert -c output
     */
    record Case(String options, boolean backing, boolean compressed) {
        @Override
        public String toString() {
            return "[" + options + "]" + (backing ? " backed" : "") + (compressed ? " compressed" : "");
        }
    }

    static Stream<Case> cases() {
        return Stream.of(new Case("cluster_size=65536", false, false), new Case("cluster_size=512", false, false),
                new Case("cluster_size=4096,refcount_bits=2", false, false),
                new Case("cluster_size=4096,refcount_bits=4", true, false),
                new Case("cluster_size=4096,refcount_bits=64", false, true),
                new Case("cluster_size=2M,refcount_bits=8", false, false),
                new Case("compat=0.10,cluster_size=4096", true, false),
                new Case("compat=0.10,cluster_size=4096", false, true),
                new Case("cluster_size=4096,compression_type=zstd", false, true),
                new Case("cluster_size=1024,refcount_bits=32", true, true),
                // extended L2 entries: every second L2 word is a subcluster bitmap, never an entry
                new Case("cluster_size=16384,extended_l2=on", true, false),
                new Case("extended_l2=on,cluster_size=32768", false, true));
    }

    /** The state of the test: the image, its active content and the content of each snapshot by name. */
    static final class State {
        final Path img;
        byte[] active;
        final Map<String, byte[]> snapshots = new LinkedHashMap<>();
        final Random random;

        State(Path img, byte[] active, Random random) {
            this.img = img;
            this.active = active;
            this.random = random;
        }
    }

    static final long SIZE = 3L << 20;

    static State create(Case c, long seed) throws IOException {
        Random r = new Random(seed);
        Path img = dir.resolve("s" + counter++ + ".qcow2");
        byte[] model = new byte[(int) SIZE];
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o", c.options()));
        if (c.backing()) {
            Path base = dir.resolve(img.getFileName() + ".base.raw");
            byte[] content = new byte[(int) (SIZE - SIZE / 4)];
            r.nextBytes(content);
            Files.write(base, content);
            System.arraycopy(content, 0, model, 0, content.length);
            cmd.addAll(List.of("-b", base.getFileName().toString(), "-F", "raw"));
        }
        if (c.compressed()) {
            // half random (incompressible, stored as data by qemu), half compressible runs
            Path raw = dir.resolve(img.getFileName() + ".src.raw");
            for (int i = 0; i < 40; i++) {
                int len = 1 + r.nextInt(40_000);
                int off = r.nextInt(model.length - len);
                if (r.nextBoolean()) {
                    Arrays.fill(model, off, off + len, (byte) (1 + r.nextInt(255)));
                } else {
                    byte[] b = new byte[len];
                    r.nextBytes(b);
                    System.arraycopy(b, 0, model, off, len);
                }
            }
            Files.write(raw, model);
            Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", c.options(), raw, img);
        } else {
            cmd.add(img);
            cmd.add(SIZE);
            Qemu.ok(dir, cmd.toArray());
        }
        return new State(img, model, r);
    }

    static void writes(Image image, State s, int count) throws IOException {
        for (int i = 0; i < count; i++) {
            int len = 1 + s.random.nextInt(50_000);
            int off = s.random.nextInt(s.active.length - len);
            byte[] data = new byte[len];
            s.random.nextBytes(data);
            if (i % 4 == 3) {
                image.writeZeroes(off, len);
                Arrays.fill(data, (byte) 0);
            } else {
                image.write(ByteBuffer.wrap(data), off);
            }
            System.arraycopy(data, 0, s.active, off, len);
        }
    }

    static Image open(State s) throws IOException {
        return Imago.opener().path(s.img).format("qcow2").writable(true).open();
    }

    /** qemu-img check is clean, lists the snapshots, and qemu reads the active image and each snapshot. */
    static void verify(State s) throws IOException {
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", s.img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        Qemu.Output list = Qemu.run(dir, "qemu-img", "snapshot", "-l", s.img);
        assertEquals(0, list.status(), list.err());
        List<String> names = new ArrayList<>();
        for (String line : list.out().lines().skip(2).toList()) {
            names.add(line.trim().split("\\s+")[1]);
        }
        assertEquals(List.copyOf(s.snapshots.keySet()), names, list.out());
        assertArrayEquals(s.active, qemuRead(s.img, null), "active image");
        for (Map.Entry<String, byte[]> e : s.snapshots.entrySet()) {
            assertArrayEquals(e.getValue(), qemuRead(s.img, e.getKey()), "snapshot " + e.getKey());
        }
        try (Image image = Imago.opener().path(s.img).format("qcow2").open()) {
            ByteBuffer all = ByteBuffer.allocate(s.active.length);
            image.read(all, 0);
            assertArrayEquals(s.active, all.array(), "imago reads the active image");
            assertEquals(List.copyOf(s.snapshots.keySet()), image.info().snapshots().stream().map(SnapshotInfo::name)
                    .toList());
        }
        for (Map.Entry<String, byte[]> e : s.snapshots.entrySet()) {
            try (Image image = Imago.opener().path(s.img).format("qcow2").snapshot(e.getKey()).open()) {
                ByteBuffer all = ByteBuffer.allocate(e.getValue().length);
                image.read(all, 0);
                assertArrayEquals(e.getValue(), all.array(), "imago reads snapshot " + e.getKey());
            }
        }
    }

    static byte[] qemuRead(Path img, String snapshot) throws IOException {
        Path out = dir.resolve(img.getFileName() + ".out.raw");
        Files.deleteIfExists(out);
        List<Object> cmd = new ArrayList<>(List.of("qemu-img", "convert", "-f", "qcow2"));
        if (snapshot != null) {
            cmd.addAll(List.of("-l", "snapshot.name=" + snapshot));
        }
        cmd.addAll(List.of("-O", "raw", img, out));
        Qemu.ok(dir, cmd.toArray());
        byte[] b = Files.readAllBytes(out);
        Files.delete(out);
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void createWriteApplyDelete(Case c) throws IOException {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2SnapshotTest " + c + " seed: " + seed);
        State s = create(c, seed);
        boolean twoBit = c.options().contains("refcount_bits=2");
        try (Image image = open(s)) {
            writes(image, s, 20);
            SnapshotInfo s1 = image.createSnapshot("s1");
            assertEquals("1", s1.id());
            assertEquals("s1", s1.name());
            s.snapshots.put("s1", s.active.clone());
        }
        verify(s);
        try (Image image = open(s)) {
            // writes after the snapshot copy shared clusters and tables, the snapshot stays as it was
            writes(image, s, 30);
        }
        verify(s);
        try (Image image = open(s)) {
            assertEquals("2", image.createSnapshot("s2").id());
            s.snapshots.put("s2", s.active.clone());
            writes(image, s, 10);
            if (twoBit) {
                // refcounts reach 3 (active + 2 snapshots): one more snapshot would overflow 2-bit refcounts
                assertThrows(ImageLimitException.class, () -> image.createSnapshot("s3"));
            } else {
                image.createSnapshot("s3");
                s.snapshots.put("s3", s.active.clone());
            }
            writes(image, s, 10);
        }
        verify(s);
        try (Image image = open(s)) {
            image.applySnapshot("s1");
            s.active = s.snapshots.get("s1").clone();
            ByteBuffer all = ByteBuffer.allocate(s.active.length);
            image.read(all, 0);
            assertArrayEquals(s.active, all.array(), "reads after apply");
            writes(image, s, 10);
        }
        verify(s);
        try (Image image = open(s)) {
            image.deleteSnapshot("s1");
            s.snapshots.remove("s1");
            writes(image, s, 10);
        }
        verify(s);
        try (Image image = open(s)) {
            for (String name : List.copyOf(s.snapshots.keySet())) {
                image.deleteSnapshot(name);
                s.snapshots.remove(name);
            }
            assertThrows(NoSuchSnapshotException.class, () -> image.deleteSnapshot("s2"));
            assertThrows(NoSuchSnapshotException.class, () -> image.applySnapshot("s2"));
            writes(image, s, 10);
        }
        verify(s);
        // without snapshots the header has no table, as qemu leaves it
        ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(s.img));
        assertEquals(0, h.getInt(60));
        assertEquals(0, h.getLong(64));
        // every cluster is the active image's own again: writes go in place, the file does not grow
        long length = Files.size(s.img);
        int written = 0;
        try (Image image = open(s)) {
            byte[] data = new byte[4096];
            for (int i = 0; i < 50 && written < 5; i++) {
                int off = s.random.nextInt(s.active.length - data.length);
                Arrays.fill(data, (byte) i);
                // only where the whole range is data of the image already
                if (image.mapping(off, data.length) instanceof imago.api.Mapping.Data d && d.length() == data.length) {
                    image.write(ByteBuffer.wrap(data), off);
                    System.arraycopy(data, 0, s.active, off, data.length);
                    written++;
                }
            }
        }
        assertTrue(written > 0);
        assertEquals(length, Files.size(s.img));
        verify(s);
    }

    @Test
    void applyRestoresTheSizeAndMovesTheL1Table() throws IOException {
        State s = create(new Case("cluster_size=512", false, false), 42);
        long bigSize = 40L << 20;
        byte[] tail = new byte[70_000];
        new Random(1).nextBytes(tail);
        try (Image image = open(s)) {
            writes(image, s, 10);
            image.createSnapshot("small");
            s.snapshots.put("small", s.active.clone());
            // 512-byte clusters: 64 L1 entries per cluster, 32 KiB each; growing to 40 MiB moves the L1 table
            image.resize(bigSize, Preallocation.OFF);
            image.write(ByteBuffer.wrap(tail), bigSize - tail.length);
            image.createSnapshot("big");
            image.applySnapshot("small");
            assertEquals(SIZE, image.size());
        }
        Qemu.Output info = Qemu.run(dir, "qemu-img", "info", s.img);
        assertTrue(info.out().contains("virtual size: 3 MiB"), info.out());
        // qemu reads a snapshot at the active size (convert -l): apply it on a copy to see all of it
        Path copy = dir.resolve(s.img.getFileName() + ".copy.qcow2");
        Files.copy(s.img, copy);
        Qemu.ok(dir, "qemu-img", "snapshot", "-a", "big", copy);
        byte[] big = qemuRead(copy, null);
        assertEquals(bigSize, big.length);
        assertArrayEquals(tail, Arrays.copyOfRange(big, (int) (bigSize - tail.length), (int) bigSize));
        assertArrayEquals(s.active, Arrays.copyOf(big, (int) SIZE));
        try (Image image = open(s)) {
            image.applySnapshot("big");
            assertEquals(bigSize, image.size());
            image.deleteSnapshot("big");
            // the active L1 table stays large: applying the small snapshot only pads it
            image.applySnapshot("small");
            assertEquals(SIZE, image.size());
        }
        verify(s);
    }

    @Test
    void oneBitRefcountsAllowOnlySnapshotsOfAnEmptyImage() throws IOException {
        State s = create(new Case("refcount_bits=1", false, false), 7);
        try (Image image = open(s)) {
            // nothing is allocated: nothing needs a second reference (qemu-img succeeds too)
            image.createSnapshot("empty");
            s.snapshots.put("empty", s.active.clone());
        }
        verify(s);
        try (Image image = open(s)) {
            writes(image, s, 5);
            // qemu-img fails with EINVAL (and leaks the new L1 table); imago refuses before changing anything
            assertThrows(ImageLimitException.class, () -> image.createSnapshot("full"));
            writes(image, s, 5);
        }
        verify(s);
        try (Image image = open(s)) {
            image.applySnapshot("empty");
            s.active = new byte[s.active.length];
        }
        verify(s);
    }

    @Test
    void readOnlyImagesRefuse() throws IOException {
        State s = create(new Case("cluster_size=4096", false, false), 3);
        try (Image image = open(s)) {
            writes(image, s, 3);
            image.createSnapshot("a");
            s.snapshots.put("a", s.active.clone());
        }
        try (Image image = Imago.opener().path(s.img).format("qcow2").open()) {
            assertThrows(ReadOnlyImageException.class, () -> image.createSnapshot("b"));
            assertThrows(ReadOnlyImageException.class, () -> image.applySnapshot("a"));
            assertThrows(ReadOnlyImageException.class, () -> image.deleteSnapshot("a"));
        }
        verify(s);
    }

    @Test
    void idsAndDuplicateNamesFollowQemu() throws IOException {
        State s = create(new Case("cluster_size=4096", false, false), 5);
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "q", s.img);
        s.snapshots.put("q", s.active.clone());
        try (Image image = open(s)) {
            writes(image, s, 3);
            // names need not be unique; the id is the largest numeric id plus one
            assertEquals("2", image.createSnapshot("q").id());
            assertEquals("3", image.createSnapshot("x").id());
            // by id first: "2" is the second "q"
            image.deleteSnapshot("2");
            assertEquals(List.of("1", "3"), image.info().snapshots().stream().map(SnapshotInfo::id).toList());
            assertEquals("4", image.createSnapshot("y").id());
            image.deleteSnapshot("y");
            image.deleteSnapshot("x");
        }
        verify(s);
        assertEquals(4, Qcow2Snapshot.strtoul("4abc"));
        assertEquals(0, Qcow2Snapshot.strtoul("abc"));
        assertEquals(-1L, Qcow2Snapshot.strtoul("99999999999999999999999"));
    }
}
