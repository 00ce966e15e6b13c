package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stateful property: random sequences of write / compressed write / zero / discard / shrink and regrow / read /
 * flush / reopen / snapshot create, apply and delete on a small-cluster image (with and without a backing file; v2,
 * v3, v3 with extended L2 entries, preallocated too, v3 with lazy refcounts; 512-byte clusters with 4- and 64-bit
 * refcounts) always read as a byte-array model says (one per snapshot too), and the final
 * image is clean for {@code qemu-img check}, with every snapshot reading (through qemu-img) as its model. Prints
 * its seed; {@code -Dimago.seed=N} replays a run.
 */
class Qcow2WritePropertyTest {
    @TempDir
    static Path dir;

    static final int SIZE = 256 << 10;
    static final AtomicInteger RUN = new AtomicInteger();

    /** Sequences run and operations applied in this JVM (shrinking included), for the report line. */
    static final java.util.concurrent.atomic.AtomicLong SEQUENCES = new java.util.concurrent.atomic.AtomicLong();
    static final java.util.concurrent.atomic.AtomicLong OPERATIONS = new java.util.concurrent.atomic.AtomicLong();

    /** Runs the operations that {@code ops} encodes; each int is one operation. */
    static void run(List<Integer> ops, int layout) {
        SEQUENCES.incrementAndGet();
        OPERATIONS.addAndGet(ops.size());
        try {
            Path img = dir.resolve("p" + RUN.incrementAndGet() + ".qcow2");
            byte[] model = new byte[SIZE];
            // 7: lazy refcounts; 8: 512-byte clusters with 64-bit refcounts (a refcount block covers 64 clusters);
            // 9: extended L2 entries, preallocated over a backing file
            int cs = layout == 0 || layout == 8 ? 512 : layout == 5 || layout == 6 || layout == 9 ? 16384 : 4096;
            CreateOptions.Builder b = CreateOptions.builder().size(SIZE).option("cluster_size", Integer.toString(cs));
            if (layout == 0 || layout == 8) {
                b.option("refcount_bits", layout == 0 ? "4" : "64");
            }
            if (cs == 16384) {
                // extended L2 entries: 512-byte subclusters
                b.option("extended_l2", "on");
            }
            if (layout == 7) {
                // lazy refcounts: dirty while written, clean after each close
                b.option("lazy_refcounts", "on");
            }
            if (layout == 9) {
                b.preallocation(Preallocation.METADATA);
            }
            boolean v2 = layout == 3 || layout == 4;
            // (lazy refcounts unbacked, so that shrinking and growing meet a file grown ahead; the fault tests have
            // them backed)
            boolean backed = layout == 2 || layout == 3 || layout == 6 || layout == 9;
            if (v2) {
                b.option("compat", "0.10");
            }
            if (backed) {
                Path base = dir.resolve(img.getFileName() + ".base");
                byte[] content = new byte[SIZE / 2];
                new Random(ops.size()).nextBytes(content);
                Files.write(base, content);
                System.arraycopy(content, 0, model, 0, content.length);
                b.backingFile(base.getFileName().toString()).backingFormat("raw");
            }
            Imago.create(img, "qcow2", b.build());
            Image image = Imago.opener().path(img).format("qcow2").writable(true).open();
            // the content of each live snapshot by name, oldest first
            Map<String, byte[]> snapshots = new LinkedHashMap<>();
            int created = 0;
            try {
                for (int op : ops) {
                    Random r = new Random(op);
                    int kind = Math.floorMod(op, 12);
                    if (kind == 11 && snapshots.isEmpty() || kind == 10 && snapshots.size() >= 3) {
                        // at most three snapshots (4-bit refcounts hold 15 references), and something to change
                        kind = 21 - kind;
                    }
                    switch (kind) {
                        case 10 -> {
                            String name = "s" + created++;
                            image.createSnapshot(name);
                            snapshots.put(name, model.clone());
                        }
                        case 11 -> {
                            List<String> names = List.copyOf(snapshots.keySet());
                            String name = names.get(r.nextInt(names.size()));
                            if (r.nextBoolean()) {
                                image.applySnapshot(name);
                                System.arraycopy(snapshots.get(name), 0, model, 0, SIZE);
                            } else {
                                image.deleteSnapshot(name);
                                snapshots.remove(name);
                            }
                        }
                        case 0 -> image.flush();
                        case 1 -> {
                            image.close();
                            image = Imago.opener().path(img).format("qcow2").writable(true).open();
                        }
                        case 2 -> {
                            ByteBuffer all = ByteBuffer.allocate(SIZE);
                            image.read(all, 0);
                            assertArrayEquals(model, all.array());
                        }
                        case 3, 4 -> {
                            int len = 1 + r.nextInt(r.nextBoolean() ? 700 : 20000);
                            int off = r.nextBoolean() ? r.nextInt(SIZE - len + 1) : r.nextInt(SIZE / cs) * cs;
                            len = Math.min(len, SIZE - off);
                            image.writeZeroes(off, len, Math.floorMod(op, 10) == 3 ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                            Arrays.fill(model, off, off + len, (byte) 0);
                        }
                        case 5 -> {
                            int len = 1 + r.nextInt(20000);
                            int off = r.nextInt(SIZE - len + 1);
                            image.discard(off, len);
                            // whole clusters read as zero afterwards, unless a v2 image shows its backing file
                            if (!(v2 && backed)) {
                                int from = (off + cs - 1) / cs * cs;
                                int to = off + len == SIZE ? SIZE : (off + len) / cs * cs;
                                if (to > from) {
                                    Arrays.fill(model, from, to, (byte) 0);
                                }
                            }
                        }
                        case 8 -> {
                            // a compressed cluster where nothing is allocated yet (else an ordinary write)
                            int off = r.nextInt(SIZE / cs) * cs;
                            byte[] data = new byte[cs];
                            for (int i = 0; i < cs; i++) {
                                data[i] = (byte) ('a' + r.nextInt(r.nextBoolean() ? 2 : 64));
                            }
                            Mapping m = image.mapping(off, cs);
                            // (the whole cluster, no host space: with extended L2 entries a subcluster's state is
                            // not the cluster's)
                            if (m.length() == Math.min(cs, SIZE - off) && (m instanceof Mapping.Unallocated u
                                    && !u.reserved() || m instanceof Mapping.Zero z && !z.reserved())) {
                                image.writeCompressed(ByteBuffer.wrap(data), off);
                            } else {
                                image.write(ByteBuffer.wrap(data), off);
                            }
                            System.arraycopy(data, 0, model, off, cs);
                        }
                        case 9 -> {
                            if (backed) {
                                break; // growing an image with a backing file is not supported
                            }
                            // shrink (freeing the tail), then grow back: the tail reads as zero
                            int to = 512 * (1 + r.nextInt(SIZE / 512));
                            image.resize(to, Preallocation.OFF);
                            image.resize(SIZE, Preallocation.OFF);
                            Arrays.fill(model, to, SIZE, (byte) 0);
                        }
                        default -> {
                            int len = 1 + r.nextInt(r.nextBoolean() ? 700 : 9000);
                            int off = r.nextInt(SIZE - len + 1);
                            byte[] data = new byte[len];
                            Arrays.fill(data, (byte) (1 + r.nextInt(255)));
                            image.write(ByteBuffer.wrap(data), off);
                            System.arraycopy(data, 0, model, off, len);
                        }
                    }
                }
                ByteBuffer all = ByteBuffer.allocate(SIZE);
                image.read(all, 0);
                assertArrayEquals(model, all.array());
            } finally {
                image.close();
            }
            Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
            assertEquals(0, check.status(), () -> check.out() + check.err());
            assertTrue(!Qcow2FaultTest.dirty(Files.readAllBytes(img)), "dirty after close");
            Files.write(dir.resolve("model.raw"), model);
            Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, "model.raw");
            assertEquals(0, cmp.status(), () -> cmp.out() + cmp.err());
            try (Image ro = Imago.opener().path(img).format("qcow2").open()) {
                assertEquals(List.copyOf(snapshots.keySet()), ro.info().snapshots().stream()
                        .map(imago.api.SnapshotInfo::name).toList());
            }
            for (Map.Entry<String, byte[]> e : snapshots.entrySet()) {
                Files.deleteIfExists(dir.resolve("snap.raw"));
                Qemu.ok(dir, "qemu-img", "convert", "-l", "snapshot.name=" + e.getKey(), "-O", "raw", img, "snap.raw");
                assertArrayEquals(e.getValue(), Files.readAllBytes(dir.resolve("snap.raw")), "snapshot " + e.getKey());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void writeReadFlushReopenSequences() {
        Qemu.require();
        String given = System.getProperty("imago.seed");
        long seed = given != null ? Long.decode(given.trim()) : new Random().nextLong();
        System.out.println("Qcow2WritePropertyTest seed: " + seed + " (replay with -Dimago.seed=" + seed + ")");
        qt().withFixedSeed(seed).withExamples(Integer.getInteger("imago.examples", 40)).withShrinkCycles(30)
                .forAll(integers().between(0, 9), lists().of(integers().all()).ofSizeBetween(1, 40))
                .checkAssert((layout, ops) -> run(ops, layout));
        System.out.println("Qcow2WritePropertyTest: " + SEQUENCES.get() + " sequences, " + OPERATIONS.get()
                + " operations, each checked against the model, qemu-img check and qemu-img compare");
    }

    /**
     * Sequences the property found, kept as regressions: compressed bytes freed by a shrink and packed
     * again at the same place and length (an L2 entry equal to one whose decoded cluster was cached).
     */
    @Test
    void sequencesFoundBefore() {
        Qemu.require();
        run(List.of(-1310881072, -366424901, 1414215622, 419727284, 836733386, 666742221, 22969340), 1);
    }

    @org.junit.jupiter.params.ParameterizedTest(name = "extended_l2={0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void concurrentWritersOnSharedClusters(boolean extendedL2) throws Exception {
        Qemu.require();
        Path img = dir.resolve("concurrent" + extendedL2 + ".qcow2");
        // with extended L2 entries, blocks of different threads share 512-byte subclusters too
        Imago.create(img, "qcow2", extendedL2
                ? CreateOptions.builder().size(SIZE).option("cluster_size", "16384").option("extended_l2", "on").build()
                : CreateOptions.builder().size(SIZE).option("cluster_size", "4096").build());
        byte[] model = new byte[SIZE];
        int block = 1000;
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open();
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<?>[] f = new Future<?>[8];
            for (int t = 0; t < 8; t++) {
                int thread = t;
                // thread t owns every 8th 1000-byte block: blocks of different threads share clusters
                f[t] = pool.submit(() -> {
                    for (int k = thread; (k + 1) * block <= SIZE; k += 8) {
                        byte[] data = new byte[block];
                        Arrays.fill(data, (byte) (thread + 1));
                        image.write(ByteBuffer.wrap(data), (long) k * block);
                    }
                    return null;
                });
            }
            for (Future<?> x : f) {
                x.get();
            }
            for (int k = 0; (k + 1) * block <= SIZE; k++) {
                Arrays.fill(model, k * block, (k + 1) * block, (byte) (k % 8 + 1));
            }
            ByteBuffer all = ByteBuffer.allocate(SIZE);
            image.read(all, 0);
            assertArrayEquals(model, all.array());
        }
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> check.out() + check.err());
    }
}
