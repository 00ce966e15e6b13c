package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;

import imago.api.CheckReport;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Repair;
import imago.api.StorageLocation;
import imago.api.spi.Checker;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random damage to the metadata of valid images (made by qemu-img, or made and randomly written by imago) (L1 and L2 tables, refcount table and blocks,
 * snapshot table and snapshot L1, header fields the open accepts): {@code check}, {@code check -r leaks}
 * and {@code check -r all} always return a report (never throw, hang or run out of memory), and a repair
 * that reports a clean image leaves one that checks clean again. Prints its seed; {@code -Dimago.seed=N}
 * replays a run and {@code -Dimago.examples=N} changes its length.
 */
class Qcow2CheckPropertyTest {
    @TempDir
    static Path dir;

    static final List<Qcow2MetadataSample> SAMPLES = new ArrayList<>();
    static final AtomicLong CHECKED = new AtomicLong();
    static final AtomicLong REFUSED = new AtomicLong();
    static final AtomicLong REPAIRED = new AtomicLong();

    @BeforeAll
    static void images() throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "2M");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 12k", "-c", "write -c -P 3 64k 4k",
                "a.qcow2");
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s", "a.qcow2");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 1 1M 4k", "-c", "write -P 2 4k 4k", "a.qcow2");
        add("a.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=2", "b.qcow2",
                "256k");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 3k", "-c", "write -P 2 100k 1k", "b.qcow2");
        add("b.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=16384,extended_l2=on,"
                + "refcount_bits=64", "c.qcow2", "4M");
        Qemu.ok(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 3k", "-c", "write -P 2 1M 40k", "c.qcow2");
        add("c.qcow2");
    }

    private static void add(String name) throws IOException {
        SAMPLES.add(sample(name, Files.readAllBytes(dir.resolve(name))));
    }

    /**
     * A random valid image: made and written by imago in memory with a random cluster size, refcount
     * width and version, and random writes, zero writes and discards.
     */
    static Qcow2MetadataSample generated(int seed) {
        Random r = new Random(seed);
        String name = "check-gen-" + seed;
        StorageLocation where = StorageLocation.memory(name);
        int[] clusterSizes = {512, 4096, 65536};
        int cs = clusterSizes[r.nextInt(clusterSizes.length)];
        boolean v2 = r.nextInt(4) == 0;
        int size = 4 << 20;
        CreateOptions.Builder b = CreateOptions.builder().size(size).option("cluster_size", Integer.toString(cs));
        if (v2) {
            b.option("compat", "0.10");
        } else {
            b.option("refcount_bits", Integer.toString(1 << r.nextInt(7)));
            if (cs >= 16384 && r.nextBoolean()) {
                // imago writes extended L2 entries too
                b.option("extended_l2", "on");
            }
        }
        try {
            Imago.create(where, "qcow2", b.build());
            try (Image image = Imago.opener().location(where).format("qcow2").writable(true).open()) {
                int ops = 1 + r.nextInt(20);
                for (int i = 0; i < ops; i++) {
                    int len = 1 + r.nextInt(64 << 10);
                    int off = r.nextInt(size - len);
                    switch (r.nextInt(4)) {
                        case 0 -> image.writeZeroes(off, len);
                        case 1 -> image.discard(off, len);
                        default -> {
                            byte[] data = new byte[len];
                            r.nextBytes(data);
                            image.write(ByteBuffer.wrap(data), off);
                        }
                    }
                }
            }
            MemoryStorage s = MemoryStorage.open(name, false);
            // undamaged, what imago wrote checks clean
            CheckReport clean = new Qcow2Check(s).run(Repair.NONE);
            assertTrue(clean.clean(), () -> "image " + seed + " as imago wrote it: " + clean);
            byte[] bytes = new byte[(int) s.size()];
            s.read(ByteBuffer.wrap(bytes), 0);
            s.close();
            return sample(name, bytes);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    private static Qcow2MetadataSample sample(String name, byte[] b) {
        // header fields the open takes as they come: nb_snapshots/snapshots_offset, features, l1 offset
        return Qcow2MetadataSample.of(name, b, List.of(new long[] {40, 8}, new long[] {60, 12}),
                Math.min(Qcow2MetadataSample.clusterSize(b), 256));
    }

    static void check(Qcow2MetadataSample s, List<Integer> picks) {
        byte[] bytes = s.mutate(picks);
        for (Repair repair : Repair.values()) {
            MemoryStorage storage = MemoryStorage.of("check-" + s.name(), bytes);
            FormatInstance layer;
            try {
                layer = new Qcow2FormatDriver().open(storage,
                        new OpenContext(repair != Repair.NONE, false, Map.of(OpenContext.CHECK_OPTION, "on")));
            } catch (ImageException refused) {
                // damage the open itself refuses (as qemu-img does) is the opener's business
                REFUSED.incrementAndGet();
                return;
            } catch (IOException e) {
                throw new AssertionError("plain IOException instead of an ImageException: " + e, e);
            }
            try {
                CheckReport report = layer.capability(Checker.class).orElseThrow().check(repair);
                CHECKED.incrementAndGet();
                if (repair == Repair.ALL && report.clean()) {
                    REPAIRED.incrementAndGet();
                    CheckReport again = new Qcow2Check(storage).run(Repair.NONE);
                    assertTrue(again.clean(), () -> "clean repair, but a second check says " + again);
                }
            } catch (IOException | RuntimeException e) {
                java.io.StringWriter trace = new java.io.StringWriter();
                e.printStackTrace(new java.io.PrintWriter(trace));
                throw new AssertionError("check threw instead of reporting: " + trace, e);
            } finally {
                MemoryStorage.delete("check-" + s.name());
            }
        }
    }

    @Test
    void damagedMetadataAlwaysGivesAReport() {
        String given = System.getProperty("imago.seed");
        long seed = given != null ? Long.decode(given.trim()) : new Random().nextLong();
        System.out.println("Qcow2CheckPropertyTest seed: " + seed + " (replay with -Dimago.seed=" + seed + ")");
        int examples = Integer.getInteger("imago.examples", 300);
        assertTimeoutPreemptively(Duration.ofSeconds(180), () -> qt().withFixedSeed(seed).withExamples(examples)
                .withShrinkCycles(300)
                .forAll(integers().between(0, SAMPLES.size()), integers().all(),
                        lists().of(integers().all()).ofSizeBetween(1, 8))
                .checkAssert((which, imageSeed, picks) -> check(which < SAMPLES.size() ? SAMPLES.get(which)
                        : generated(imageSeed), picks)));
        System.out.println("Qcow2CheckPropertyTest: " + CHECKED.get() + " checks, " + REPAIRED.get()
                + " clean repairs, " + REFUSED.get() + " opens refused");
        assertTrue(CHECKED.get() > examples, "most damaged images must open for checking");
    }
}
