package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Random writes through imago against a byte-array model; afterwards {@code qemu-img check} must be clean,
 * {@code qemu-img compare} must find the image equal to the model, and imago must read the model back.
 */
class Qcow2WriteTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /**
     * One layout.
     *
     * @param options create options
     * @param size virtual size
     * @param backing whether the image has a raw backing file with random content
     * @param writes number of random writes
     * @param maxLength the longest write
     */
    record Case(String options, long size, boolean backing, int writes, int maxLength) {
        @Override
        public String toString() {
            return "[" + options + "] size=" + size + (backing ? " backed" : "") + " writes=" + writes;
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (int rc : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            out.add(new Case("refcount_bits=" + rc, 8L << 20, false, 60, 200_000));
        }
        // small clusters: many L2 tables, new refcount blocks
        out.add(new Case("cluster_size=512", 2L << 20, false, 200, 5000));
        out.add(new Case("cluster_size=512,refcount_bits=1", 2L << 20, false, 200, 5000));
        out.add(new Case("cluster_size=512,refcount_bits=8", 4L << 20, true, 200, 5000));
        out.add(new Case("cluster_size=2M", 64L << 20, false, 12, 3 << 20));
        out.add(new Case("cluster_size=2M", 16L << 20, true, 8, 100_000));
        out.add(new Case("compat=0.10", 8L << 20, true, 60, 200_000));
        out.add(new Case("cluster_size=4096,lazy_refcounts=on", 3L << 20, true, 100, 20_000));
        out.add(new Case("", (5L << 20) + 1536, true, 60, 150_000));
        // extended L2 entries: 512-byte, 2 KiB and 64 KiB subclusters
        out.add(new Case("extended_l2=on,cluster_size=16384", 3L << 20, false, 150, 40_000));
        out.add(new Case("extended_l2=on,cluster_size=16384,refcount_bits=1", 3L << 20, true, 150, 40_000));
        out.add(new Case("extended_l2=on", (5L << 20) + 1536, true, 60, 150_000));
        out.add(new Case("extended_l2=on,cluster_size=2M", 16L << 20, true, 12, 300_000));
        return out.stream();
    }

    /**
     * Small clusters with wide (or 1-bit) refcounts, where one refcount block covers few clusters: heavy
     * allocation, growing to sizes whose L1 table (and snapshot L1 copies) run over many refcount blocks, the
     * refcount table growing past what one new block describes. qemu-img check finds no error and no leak, and
     * qemu-img compare finds the model.
     */
    @ParameterizedTest(name = "{0} grown to {1}")
    @org.junit.jupiter.params.provider.CsvSource({"'cluster_size=512,refcount_bits=64', 4G",
        "'cluster_size=512,refcount_bits=64', 64M", "'cluster_size=512,refcount_bits=1', 4G",
        "'cluster_size=512,refcount_bits=32', 1G"})
    void longTablesOverManyRefcountBlocks(String options, String grown) throws IOException {
        Path img = dir.resolve("long" + counter++ + ".qcow2");
        long size = 8L << 20;
        long newSize = Qcow2CreateSpec.parseSize(grown, "size");
        CreateOptions.Builder b = CreateOptions.builder().size(size);
        Qcow2CreateTest.parse(options).forEach(b::option);
        Imago.create(img, "qcow2", b.build());
        byte[] model = new byte[(int) size];
        Random r = new Random(counter);
        boolean snapshots = !options.endsWith("refcount_bits=1");
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int i = 0; i < 150; i++) {
                int length = 1 + r.nextInt(30_000);
                write(image, model, (long) (r.nextDouble() * (size - length)), length, r);
            }
            image.flush();
            image.resize(newSize, Preallocation.OFF);
            if (snapshots) {
                // a snapshot table and an L1 copy as long as the grown L1 table
                image.createSnapshot("one");
            }
            byte[] tail = new byte[70_000];
            r.nextBytes(tail);
            image.write(ByteBuffer.wrap(tail), newSize - tail.length);
            for (int i = 0; i < 60; i++) {
                int length = 1 + r.nextInt(30_000);
                write(image, model, (long) (r.nextDouble() * (size - length)), length, r);
            }
            if (snapshots) {
                image.createSnapshot("two");
                image.deleteSnapshot("one");
                if (newSize < (1L << 30)) {
                    // a snapshot table of many clusters, growing (and moving) with each snapshot
                    for (int i = 0; i < 24; i++) {
                        image.createSnapshot("a snapshot with a long name to fill the table quickly " + i);
                    }
                    for (int i = 0; i < 24; i += 2) {
                        image.deleteSnapshot("a snapshot with a long name to fill the table quickly " + i);
                    }
                }
            }
            assertReads(image, model);
            ByteBuffer back = ByteBuffer.allocate(tail.length);
            image.read(back, newSize - tail.length);
            assertArrayEquals(tail, back.array());
            image.resize(newSize - (1 << 20), Preallocation.OFF);
        }
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        if (snapshots) {
            assertEquals(newSize < (1L << 30) ? 13 : 1, Qemu.ok(dir, "qemu-img", "snapshot", "-l", img).lines()
                    .filter(l -> l.matches("^\\d+ .*")).count());
        }
        Path raw = dir.resolve(img.getFileName() + ".raw");
        Files.write(raw, model);
        // the model is the first 8 MiB; qemu-img compare wants the rest of the longer image zero
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, raw);
        assertEquals(0, cmp.status(), () -> cmp.out() + cmp.err());
        Files.delete(raw);
    }

    static int counter;

    /** Creates the image (with a random raw backing file if asked) and returns the model of its content. */
    static byte[] create(Path img, Case c, Random r) throws IOException {
        CreateOptions.Builder b = CreateOptions.builder().size(c.size());
        Qcow2CreateTest.parse(c.options()).forEach(b::option);
        byte[] model = new byte[(int) c.size()];
        if (c.backing()) {
            Path base = img.resolveSibling(img.getFileName() + ".base.raw");
            // a backing file shorter than the overlay: its tail reads as zeroes
            byte[] content = new byte[(int) (c.size() - c.size() / 8)];
            r.nextBytes(content);
            Files.write(base, content);
            System.arraycopy(content, 0, model, 0, content.length);
            b.backingFile(base.getFileName().toString()).backingFormat("raw");
        }
        Imago.create(img, "qcow2", b.build());
        return model;
    }

    static void write(Image image, byte[] model, long offset, int length, Random r) throws IOException {
        byte[] data = new byte[length];
        if (r.nextInt(4) == 0) {
            java.util.Arrays.fill(data, (byte) r.nextInt(256));
        } else {
            r.nextBytes(data);
        }
        image.write(ByteBuffer.wrap(data), offset);
        System.arraycopy(data, 0, model, (int) offset, length);
    }

    /**
     * 40 operations on the image and the model, of 1 to {@code maxLength} bytes at random offsets, a flush after every
     * tenth: of each {@code cycle} in turn a zero write (with {@code MAY_UNMAP}, or with it at random if
     * {@code randomUnmap}), a discard (the model takes what the image then reads), and the rest data writes.
     */
    static void mixedOperations(Image image, byte[] model, Random r, int maxLength, int cycle, boolean randomUnmap)
            throws IOException {
        for (int i = 0; i < 40; i++) {
            int len = 1 + r.nextInt(maxLength);
            int off = r.nextInt(model.length - len);
            switch (i % cycle) {
                case 0 -> {
                    image.writeZeroes(off, len, !randomUnmap || r.nextBoolean()
                            ? java.util.Set.of(imago.api.ZeroFlag.MAY_UNMAP) : java.util.Set.of());
                    java.util.Arrays.fill(model, off, off + len, (byte) 0);
                }
                case 1 -> {
                    image.discard(off, len);
                    ByteBuffer now = ByteBuffer.allocate(len);
                    image.read(now, off);
                    System.arraycopy(now.array(), 0, model, off, len);
                }
                default -> write(image, model, off, len, r);
            }
            if (i % 10 == 9) {
                image.flush();
            }
        }
    }

    static void assertReads(Image image, byte[] model) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(model.length);
        image.read(all, 0);
        assertArrayEquals(model, all.array());
    }

    /** qemu-img check clean, compare equal to the model, and imago reads the model after reopening. */
    static void verify(Path img, byte[] model) throws IOException {
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        assertReadsModel(img, model);
    }

    /** qemu-img compare finds {@code img} equal to {@code model}, and imago reads the model after reopening. */
    static void assertReadsModel(Path img, byte[] model) throws IOException {
        assertQemuReadsModel(img, model);
        try (Image image = Imago.opener().path(img).format("qcow2").open()) {
            assertReads(image, model);
        }
    }

    /** qemu-img compare finds {@code img} equal to {@code model}. */
    static void assertQemuReadsModel(Path img, byte[] model) throws IOException {
        Path raw = img.resolveSibling(img.getFileName() + ".model.raw");
        Files.write(raw, model);
        Qemu.Output cmp = Qemu.run(img.getParent(), "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, raw);
        assertEquals(0, cmp.status(), () -> "qemu-img compare:\n" + cmp.out() + cmp.err());
        Files.delete(raw);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void randomWrites(Case c) throws IOException {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2WriteTest " + c + " seed: " + seed);
        Random r = new Random(seed);
        Path img = dir.resolve("w" + counter++ + ".qcow2");
        byte[] model = create(img, c, r);
        int cs = 1 << Files.readAllBytes(img)[23];
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int i = 0; i < c.writes(); i++) {
                int length = 1 + r.nextInt(c.maxLength());
                if (r.nextBoolean()) {
                    length = Math.max(cs, length / cs * cs);
                }
                length = (int) Math.min(length, c.size());
                long offset = (long) (r.nextDouble() * (c.size() - length + 1));
                if (r.nextBoolean()) {
                    offset = offset / cs * cs;
                }
                write(image, model, offset, length, r);
                if (i % 20 == 0) {
                    assertReads(image, model);
                }
                if (i % 25 == 24) {
                    image.flush();
                }
            }
            assertReads(image, model);
        }
        verify(img, model);
        if (c.options().contains("cluster_size=512") && !c.options().contains("refcount_bits=1")) {
            // the writes needed more than the refcount block create() made
            ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(img));
            long reftable = h.getLong(48);
            int blocks = 0;
            for (int i = 0; i < 64; i++) {
                blocks += h.getLong((int) reftable + 8 * i) != 0 ? 1 : 0;
            }
            assertTrue(blocks > 1, "refcount blocks: " + blocks);
        }
        // a second session appends to what the first wrote
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int i = 0; i < 5; i++) {
                int length = 1 + r.nextInt((int) Math.min(c.maxLength(), c.size()));
                long offset = (long) (r.nextDouble() * (c.size() - length + 1));
                write(image, model, offset, length, r);
            }
        }
        verify(img, model);
    }

    @Test
    void qemuReadsImagoWritesOverQemuWrites() throws IOException {
        Path img = dir.resolve("mixed.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "1M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 0x11 0 12k",
                "write -z 64k 8k", "write -z -u 128k 4k", "write -P 0x22 200k 4k", "write -z 200k 4k"));
        byte[] model = new byte[1 << 20];
        java.util.Arrays.fill(model, 0, 12 << 10, (byte) 0x11);
        Random r = new Random(7);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            write(image, model, 100, 5000, r);         // in place
            write(image, model, (64 << 10) + 10, 100, r); // into a zero cluster
            write(image, model, (128 << 10) + 4000, 200, r);
            write(image, model, (200 << 10) + 1, 1, r); // zero cluster with a host cluster
            write(image, model, 900_000, 100_000, r);
            assertReads(image, model);
        }
        verify(img, model);
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x11 6000 6000", img);
    }

    @Test
    void refusals() throws IOException {
        Path raw = dir.resolve("src.raw");
        Files.write(raw, new byte[1 << 20]);
        Qcow2DifferentialTest.qemuIo(dir, raw.toString(), "raw", List.of("write -P 3 0 64k"));
        Path comp = dir.resolve("comp.qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", raw, comp);
        try (Image image = Imago.opener().path(comp).format("qcow2").open()) {
            assertThrows(ReadOnlyImageException.class, () -> image.write(ByteBuffer.allocate(1), 0));
        }
    }

    /** Writes, zero writes and discards over compressed clusters (zlib and zstd, v2 and v3, with 4k clusters). */
    @ParameterizedTest
    @MethodSource("compressedLayouts")
    void compressedClustersAreRewritten(String options) throws IOException {
        Path raw = dir.resolve("csrc.raw");
        byte[] model = new byte[1 << 20];
        Random r = new Random(options.hashCode());
        for (int i = 0; i < model.length; i += 512) {
            // compressible: runs of one byte value
            java.util.Arrays.fill(model, i, i + 512, (byte) r.nextInt(4));
        }
        Files.write(raw, model);
        Path comp = dir.resolve("c" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", options, raw, comp);
        try (Image image = Imago.opener().path(comp).format("qcow2").writable(true).open()) {
            mixedOperations(image, model, r, 10_000, 4, false);
            assertReads(image, model);
        }
        verify(comp, model);
    }

    static Stream<String> compressedLayouts() {
        return Stream.of("cluster_size=4096", "cluster_size=4096,compression_type=zstd,refcount_bits=4",
                "compat=0.10,cluster_size=4096", "cluster_size=65536", "extended_l2=on,cluster_size=16384",
                "extended_l2=on,cluster_size=65536,compression_type=zstd");
    }

    /** Writes, zero writes and discards on images with internal snapshots leave every snapshot as it was. */
    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=4096", "cluster_size=512", "compat=0.10,cluster_size=4096",
        "cluster_size=65536,refcount_bits=2", "extended_l2=on,cluster_size=16384", "extended_l2=on"})
    void snapshotsStayIntact(String options) throws IOException {
        Path img = dir.resolve("snaps" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options, img, "1M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 0 200k",
                "write -c -P 7 256k 64k", "write -P 9 400k 8k", "write -z 400k 4k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 2 100k 100k",
                "write -P 3 600k 50k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s2", img);
        List<byte[]> before = new ArrayList<>();
        for (String snap : List.of("s1", "s2")) {
            Path out = dir.resolve(img.getFileName() + "." + snap + ".raw");
            Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=" + snap, "-O", "raw", img, out);
            before.add(Files.readAllBytes(out));
        }
        Path active = dir.resolve(img.getFileName() + ".active.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-O", "raw", img, active);
        byte[] model = Files.readAllBytes(active);
        Random r = new Random(options.hashCode());
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            mixedOperations(image, model, r, 30_000, 5, true);
            assertReads(image, model);
        }
        verify(img, model);
        int k = 0;
        for (String snap : List.of("s1", "s2")) {
            Path out = dir.resolve(img.getFileName() + "." + snap + ".after.raw");
            Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=" + snap, "-O", "raw", img, out);
            assertArrayEquals(before.get(k++), Files.readAllBytes(out), snap);
        }
    }

    @Test
    void refcountTableGrows() throws IOException {
        // 512-byte clusters, 64-bit refcounts: the one-cluster refcount table covers 64 * 64 clusters (2 MiB),
        // then it doubles (twice for 6 MiB of clusters), moving each time
        Path img = dir.resolve("full.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(6L << 20).option("cluster_size", "512")
                .option("refcount_bits", "64").build());
        byte[] model = new byte[6 << 20];
        Random r = new Random(3);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (long off = 0; off < model.length; off += 64 << 10) {
                write(image, model, off + r.nextInt(1000), 60_000, r);
                if (off % (1 << 20) == 0) {
                    image.flush();
                }
            }
            assertReads(image, model);
        }
        assertTrue(ByteBuffer.wrap(Files.readAllBytes(img)).getInt(56) >= 4, "refcount table clusters");
        verify(img, model);
    }

    static byte[] filled(int value, int length) {
        byte[] b = new byte[length];
        java.util.Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void resizeGrows() throws IOException {
        Path img = dir.resolve("grow.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1536).option("cluster_size", "4096").build());
        byte[] model = new byte[64 << 20];
        Random r = new Random(11);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            write(image, model, 0, 1536, r);
            image.resize(64 << 20, Preallocation.OFF);
            assertEquals(64 << 20, image.size());
            write(image, model, 5000, 70_000, r);
            write(image, model, (64 << 20) - 10_000, 10_000, r);
            assertReads(image, model);
            assertThrows(IllegalArgumentException.class, () -> image.resize(1 << 20, Preallocation.FULL));
            assertEquals(64 << 20, image.size());
        }
        verify(img, model);
        assertTrue(Qemu.ok(dir, "qemu-img", "info", img).contains("64 MiB"));

        // 4 KiB clusters: one L1 cluster maps 1 GiB, so growing to 3 GiB moves the L1 table
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.resize(3L << 30, Preallocation.OFF);
            image.write(ByteBuffer.wrap(filled(0x55, 5000)), (3L << 30) - 5000);
            image.write(ByteBuffer.wrap(filled(0x66, 70_000)), (3L << 29) - 100);
            ByteBuffer head = ByteBuffer.allocate(1 << 20);
            image.read(head, 0);
            assertArrayEquals(java.util.Arrays.copyOf(model, 1 << 20), head.array());
        }
        Qemu.ok(dir, "qemu-img", "check", img);
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x55 " + ((3L << 30) - 5000) + " 5000",
                "-c", "read -P 0x66 " + ((3L << 29) - 100) + " 70000", "-c", "read -P 0 " + (64 << 20) + " 1M", img);
        assertTrue(Qemu.ok(dir, "qemu-img", "info", img).contains("3 GiB"));

        // 512-byte clusters: the new L1 table (64 clusters) needs new refcount blocks on the way
        Path tiny = dir.resolve("tiny.qcow2");
        Imago.create(tiny, "qcow2", CreateOptions.builder().size(1 << 20).option("cluster_size", "512")
                .option("refcount_bits", "8").build());
        byte[] tinyModel = new byte[16 << 20];
        try (Image image = Imago.opener().path(tiny).format("qcow2").writable(true).open()) {
            write(image, tinyModel, 0, 300_000, r);
            image.resize(16 << 20, Preallocation.OFF);
            write(image, tinyModel, (16 << 20) - 300_000, 300_000, r);
            image.flush();
            write(image, tinyModel, 5 << 20, 100_000, r);
        }
        verify(tiny, tinyModel);

        // an empty image has no L1 table at all
        Path empty = dir.resolve("empty.qcow2");
        Imago.create(empty, "qcow2", CreateOptions.ofSize(0));
        byte[] small = new byte[1 << 20];
        try (Image image = Imago.opener().path(empty).format("qcow2").writable(true).open()) {
            image.resize(1 << 20, Preallocation.OFF);
            write(image, small, 1000, 200_000, r);
        }
        verify(empty, small);

        Path backed = dir.resolve("grow-backed.qcow2");
        Files.write(dir.resolve("grow-base.raw"), filled(0x77, 1 << 20));
        Imago.create(backed, "qcow2", CreateOptions.builder().size(1 << 19).backingFile("grow-base.raw")
                .backingFormat("raw").build());
        try (Image image = Imago.opener().path(backed).format("qcow2").writable(true).noBacking().open()) {
            // without the backing file, imago cannot know whether its data would show through
            assertThrows(UnsupportedFeatureException.class, () -> image.resize(1 << 20, Preallocation.OFF));
        }
        try (Image image = Imago.opener().path(backed).format("qcow2").writable(true).open()) {
            image.resize(1 << 20, Preallocation.OFF);
        }
        byte[] grownModel = java.util.Arrays.copyOf(filled(0x77, 1 << 19), 1 << 20);
        verify(backed, grownModel);
    }

    @Test
    void strayAutoclearBitsAreCleared() throws IOException {
        // an autoclear bit without the feature's data is cleared before anything is written
        Path stray = dir.resolve("stray.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", stray, "1M");
        byte[] b = Files.readAllBytes(stray);
        ByteBuffer.wrap(b).putLong(88, 1L << 5);
        Files.write(stray, b);
        byte[] model = new byte[1 << 20];
        try (Image image = Imago.opener().path(stray).format("qcow2").writable(true).open()) {
            write(image, model, 100_000, 5000, new Random(5));
        }
        assertEquals(0, ByteBuffer.wrap(Files.readAllBytes(stray)).getLong(88));
        verify(stray, model);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=4096", "cluster_size=16384,extended_l2=on"})
    void makeEmptyUnmapsEverythingAndKeepsSnapshots(String options) throws IOException {
        Path base = dir.resolve("empty-base.raw");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", base, "2M");
        Qcow2DifferentialTest.qemuIo(dir, base.toString(), "raw", List.of("write -P 0x55 0 2M"));
        Path src = dir.resolve("empty-src.raw");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", src, "2M");
        Qcow2DifferentialTest.qemuIo(dir, src.toString(), "raw", List.of("write -P 0x66 0 128k"));
        Path img = dir.resolve("empty" + counter++ + ".qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", options, src, img);
        Qemu.ok(dir, "qemu-img", "rebase", "-u", "-b", base, "-F", "raw", img);
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 1M 64k",
                "write -z 1200k 64k", "write -z -u 1300k 8k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s1", img);
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 2 1500k 4k"));
        Path snap = dir.resolve("empty-snap.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img, snap);
        try (Image image = Imago.opener().path(img).writable(true).open()) {
            image.makeEmpty();
        }
        String check = Qemu.ok(dir, "qemu-img", "check", img);
        assertTrue(check.startsWith("No errors were found"), check);
        Qemu.ok(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, base);
        String map = Qemu.ok(dir, "qemu-img", "map", "--output=json", img);
        assertTrue(!map.contains("\"depth\": 0"), map);
        Path after = dir.resolve("empty-snap-after.raw");
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img, after);
        assertArrayEquals(Files.readAllBytes(snap), Files.readAllBytes(after));
    }

    @Test
    void changeBackingFileWritesTheHeaderQemuWrites() throws IOException {
        List<String> layouts = List.of("compat=0.10", "cluster_size=4096", "cluster_size=512", "");
        int n = 0;
        for (String options : layouts) {
            for (String[] change : new String[][] {{"b.qcow2", "qcow2"}, {"", null}, {"x/y/" + "z".repeat(300), "raw"},
                    {"back.raw", "raw"}}) {
                Path ours = dir.resolve("rebase-ours-" + n + ".qcow2");
                Path theirs = dir.resolve("rebase-qemu-" + n + ".qcow2");
                n++;
                Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", options.isEmpty() ? "compat=1.1" : options,
                        "-b", "old-backing.qcow2", "-F", "qcow2", "-u", ours, "1M");
                if (options.isEmpty()) {
                    // an unknown header extension is kept after the known ones, as QEMU keeps it
                    byte[] b = Files.readAllBytes(ours);
                    ByteBuffer h = ByteBuffer.wrap(b);
                    int end = Qcow2HostileTest.extension(h, 0) - 8;
                    byte[] name = java.util.Arrays.copyOfRange(b, (int) h.getLong(8), (int) h.getLong(8) + h.getInt(16));
                    h.putInt(end, 0x12345678).putInt(end + 4, 3).put(end + 8, new byte[] {1, 2, 3, 0, 0, 0, 0, 0})
                            .putLong(end + 16, 0);
                    h.putLong(8, end + 24).put(end + 24, name);
                    Files.write(ours, b);
                }
                Files.copy(ours, theirs);
                List<Object> cmd = new ArrayList<>(List.of("qemu-img", "rebase", "-u", "-b", change[0]));
                if (change[1] != null) {
                    cmd.addAll(List.of("-F", change[1]));
                }
                cmd.add(theirs);
                Qemu.ok(dir, cmd.toArray());
                try (Image image = Imago.opener().path(ours).format("qcow2").noBacking().writable(true).open()) {
                    image.changeBackingFile(change[0].isEmpty() ? null : change[0], change[1]);
                }
                assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), options + " " + change[0]);
            }
        }
    }
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"data_file=DATA", "data_file=DATA,data_file_raw=on", "data_file=DATA,cluster_size=4096",
        "data_file=DATA,backed", "data_file=DATA,extended_l2=on", "data_file=DATA,extended_l2=on,backed",
        "data_file=DATA,data_file_raw=on,extended_l2=on,cluster_size=16384"})
    void externalDataFiles(String options) throws IOException {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2WriteTest data file [" + options + "] seed: " + seed);
        Random r = new Random(seed);
        int n = counter++;
        Path img = dir.resolve("df" + n + ".qcow2");
        Path data = dir.resolve("df" + n + ".data");
        int size = 3 << 20;
        byte[] model = new byte[size];
        List<Object> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                options.replace(",backed", "").replace("DATA", data.getFileName().toString())));
        if (options.contains("backed")) {
            Path base = dir.resolve("df" + n + ".base.raw");
            byte[] content = new byte[size - size / 8];
            r.nextBytes(content);
            Files.write(base, content);
            System.arraycopy(content, 0, model, 0, content.length);
            create.addAll(List.of("-b", base.getFileName().toString(), "-F", "raw"));
        }
        create.addAll(List.of(img.getFileName().toString(), size));
        Qemu.ok(dir, create.toArray());
        int cs = 1 << Files.readAllBytes(img)[23];
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int i = 0; i < 80; i++) {
                int length = 1 + r.nextInt(3 * cs);
                long offset = (long) (r.nextDouble() * (size - length + 1));
                if (r.nextBoolean()) {
                    offset = offset / cs * cs;
                    length = Math.max(cs, length / cs * cs);
                }
                switch (r.nextInt(5)) {
                    case 0 -> {
                        image.writeZeroes(offset, length, r.nextBoolean() ? java.util.Set.of(imago.api.ZeroFlag.MAY_UNMAP)
                                : java.util.Set.of());
                        java.util.Arrays.fill(model, (int) offset, (int) offset + length, (byte) 0);
                    }
                    case 1 -> {
                        image.discard(offset, length);
                        ByteBuffer now = ByteBuffer.allocate(length);
                        image.read(now, offset);
                        System.arraycopy(now.array(), 0, model, (int) offset, length);
                    }
                    default -> write(image, model, offset, length, r);
                }
                if (i % 20 == 19) {
                    image.flush();
                    assertReads(image, model);
                }
            }
        }
        verify(img, model);
        if (options.contains("data_file_raw=on")) {
            // a raw data file is a valid raw image of the guest's bytes
            assertArrayEquals(model, java.util.Arrays.copyOf(Files.readAllBytes(data), size));
            assertEquals(Qcow2Header.AUTOCLEAR_DATA_FILE_RAW, ByteBuffer.wrap(Files.readAllBytes(img)).getLong(88));
        }
    }
    /**
     * A snapshot's L1 copy longer than one refcount block covers, in an image qemu-img made: placed with the
     * refcount blocks it needs after it (never a hang), and qemu-img reads the snapshot as it was.
     */
    @Test
    void tablesLongerThanARefcountBlockArePlaced() throws IOException {
        Path img = dir.resolve("long-l1.qcow2");
        // 512-byte clusters, 64-bit refcounts: a refcount block covers 64 clusters; the L1 table takes 128
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", img, "256M");
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -P 1 0 4k"));
        org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
                image.createSnapshot("s");
                image.write(ByteBuffer.wrap(new byte[4096]), 0);
            }
        });
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), check.out());
        assertTrue(check.out().contains("No errors were found"), check.out());
        Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=s", "-O", "raw", img, dir.resolve("long-s.raw"));
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(dir.resolve("long-s.raw")), 8192);
        byte[] expected = new byte[8192];
        java.util.Arrays.fill(expected, 0, 4096, (byte) 1);
        assertArrayEquals(expected, head);
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0 0 4k", img);
    }
}
