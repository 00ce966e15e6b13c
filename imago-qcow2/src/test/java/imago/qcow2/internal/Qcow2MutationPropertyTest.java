package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.lists;

import imago.api.Image;
import imago.api.ImageException;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random byte mutations of the metadata (header cluster, L1 and L2 tables, snapshot table) of valid
 * qemu-made images: opening and reading everything either works or throws an
 * {@link ImageException}; never another exception, an OutOfMemoryError or a hang. Prints its seed;
 * {@code -Dimago.seed=N} replays a run and {@code -Dimago.examples=N} changes its length.
 */
class Qcow2MutationPropertyTest {
    @TempDir
    static Path dir;

    static final List<Qcow2MetadataSample> SAMPLES = new ArrayList<>();

    @BeforeAll
    static void images() throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "2M");
        Qcow2DifferentialTest.qemuIo(dir, "a.qcow2", "qcow2", List.of("write -P 0xab 0 12k", "write -z 64k 8k",
                "write -P 1 1M 4k"));
        Qemu.ok(dir, "qemu-img", "snapshot", "-c", "s", "a.qcow2");
        add("a.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "r.raw", "1M");
        Qcow2DifferentialTest.qemuIo(dir, "r.raw", "raw", List.of("write -P 0x12 0 40k", "write -P 0x13 512k 8k"));
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", "r.raw", "c.qcow2");
        add("c.qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=16384,compression_type=zstd,"
                + "extended_l2=on", "r.raw", "z.qcow2");
        Qcow2DifferentialTest.qemuIo(dir, "z.qcow2", "qcow2", List.of("write -P 0x77 100k 1k"));
        add("z.qcow2");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=512", "v2.qcow2", "256k");
        Qcow2DifferentialTest.qemuIo(dir, "v2.qcow2", "qcow2", List.of("write -P 0xab 0 3k", "write -P 2 100k 1k"));
        add("v2.qcow2");
    }

    private static void add(String name) throws IOException {
        byte[] b = Files.readAllBytes(dir.resolve(name));
        // the whole header cluster (up to 1 KiB) and the tables
        SAMPLES.add(Qcow2MetadataSample.of(name, b,
                List.of(new long[] {0, Math.min(Qcow2MetadataSample.clusterSize(b), 1024)}), 64));
    }

    static final java.util.concurrent.atomic.AtomicLong READ = new java.util.concurrent.atomic.AtomicLong();
    static final java.util.concurrent.atomic.AtomicLong REFUSED = new java.util.concurrent.atomic.AtomicLong();

    static void check(Qcow2MetadataSample s, List<Integer> picks) {
        byte[] bytes = s.mutate(picks);
        check(s, bytes, Map.of());
        if (ByteBuffer.wrap(s.bytes()).getInt(60) > 0) {
            check(s, bytes, Map.of("snapshot", "1"));
        }
    }

    static void check(Qcow2MetadataSample s, byte[] bytes, Map<String, String> options) {
        BytesStorage storage = new BytesStorage(s.name(), bytes);
        try {
            FormatInstance layer = new Qcow2FormatDriver().open(storage, new OpenContext(false, false, options));
            try (Image img = LayeredImage.builder("qcow2", layer, storage).build()) {
                long size = img.size();
                int chunk = 256 << 10;
                // read the first and the last 8 MiB, and walk the extents of everything
                for (long pos = 0; pos < Math.min(size, 8 << 20); pos += chunk) {
                    img.read(ByteBuffer.allocate((int) Math.min(chunk, size - pos)), pos);
                }
                for (long pos = Math.max(0, size - (8 << 20)); pos < size; pos += chunk) {
                    img.read(ByteBuffer.allocate((int) Math.min(chunk, size - pos)), pos);
                }
                long pos = 0;
                for (int n = 0; pos < size && n < 100_000; n++) {
                    pos += img.extent(pos, size - pos).length();
                }
                img.info();
                layer.mapsStorageHoles();
            }
            READ.incrementAndGet();
        } catch (ImageException expected) {
            // a clear refusal is a correct answer for a damaged image
            REFUSED.incrementAndGet();
        } catch (IOException e) {
            throw new AssertionError("plain IOException instead of an ImageException: " + e, e);
        }
    }

    @Test
    void mutatedMetadataFailsCleanlyOrReads() {
        String given = System.getProperty("imago.seed");
        long seed = given != null ? Long.decode(given.trim()) : new Random().nextLong();
        System.out.println("Qcow2MutationPropertyTest seed: " + seed + " (replay with -Dimago.seed=" + seed + ")");
        int examples = Integer.getInteger("imago.examples", 400);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> qt().withFixedSeed(seed).withExamples(examples)
                .withShrinkCycles(500)
                .forAll(integers().between(0, SAMPLES.size() - 1), lists().of(integers().all()).ofSizeBetween(1, 12))
                .checkAssert((which, picks) -> check(SAMPLES.get(which), picks)));
        System.out.println("Qcow2MutationPropertyTest: " + READ.get() + " mutated images read, " + REFUSED.get()
                + " refused with an ImageException");
    }
}
