package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.Mapping;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Read-path behaviour beyond byte equality: merging, the decompression cache, concurrency, read-only. */
class Qcow2ReadTest {
    @TempDir
    Path dir;

    private Qcow2Instance open(Path image) throws IOException {
        return (Qcow2Instance) new Qcow2FormatDriver().open(new BytesStorage(image.getFileName().toString(),
                Files.readAllBytes(image)), OpenContext.of(false));
    }

    @Test
    void aCompressedClusterReadInPiecesIsDecompressedOnce() throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "r.raw", "1M");
        Qcow2DifferentialTest.qemuIo(dir, "r.raw", "raw", List.of("write -P 0x42 0 1M"));
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "r.raw", "c.qcow2");
        Qcow2Instance layer = open(dir.resolve("c.qcow2"));
        Mapping m = layer.mapping(0, 1 << 20);
        assertInstanceOf(Mapping.Special.class, m);
        assertEquals(1 << 20, m.length(), "a run of compressed clusters maps as one (decoded in parallel)");
        try (Image img = LayeredImage.builder("qcow2", layer, new BytesStorage("c", new byte[0])).build()) {
            byte[] piece = new byte[4096];
            for (int i = 0; i < 16; i++) {
                img.read(ByteBuffer.wrap(piece), i * 4096L);
                byte[] expected = new byte[4096];
                Arrays.fill(expected, (byte) 0x42);
                assertArrayEquals(expected, piece);
            }
            assertEquals(1, layer.decompressions());
            // a long read decodes each of its clusters at most once, in parallel, each into its own slice
            byte[] all = new byte[(1 << 20) - 1000];
            img.read(ByteBuffer.wrap(all), 500);
            byte[] expected = new byte[all.length];
            Arrays.fill(expected, (byte) 0x42);
            assertArrayEquals(expected, all);
            // the other 15 clusters decode once each; cluster 0 comes from the cache unless another decoder
            // replaced the cached cluster before cluster 0's decoder looked (the decoders run in parallel)
            long decoded = layer.decompressions() - 1;
            assertTrue(decoded == 15 || decoded == 16, "each cluster decodes at most once: " + decoded);
        }
    }

    @Test
    void contiguousClustersMergeIntoOneMapping() throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "a.qcow2", "4M");
        Qcow2DifferentialTest.qemuIo(dir, "a.qcow2", "qcow2", List.of("write -P 1 0 1M"));
        Qcow2Instance layer = open(dir.resolve("a.qcow2"));
        Mapping m = layer.mapping(0, 4 << 20);
        assertInstanceOf(Mapping.Data.class, m);
        // 1 MiB of 4 KiB clusters, across two L2 tables (512 entries each)
        assertEquals(1 << 20, m.length());
        Mapping rest = layer.mapping(1 << 20, 4 << 20);
        assertEquals(new Mapping.Unallocated(1 << 20, 3 << 20), rest);
        assertEquals(new Mapping.EndOfImage(4 << 20), layer.mapping(4 << 20, 1));
        assertEquals(100, layer.mapping(4096, 100).length());
    }

    @Test
    void concurrentReadersSeeTheSameBytes() throws Exception {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "raw", "r.raw", "8M");
        List<String> writes = new ArrayList<>();
        Random r = new Random(7);
        for (int i = 0; i < 40; i++) {
            writes.add("write -P " + (i + 1) + " " + r.nextInt(8 << 11) * 512L + " " + (1 + r.nextInt(64)) * 512);
        }
        Qcow2DifferentialTest.qemuIo(dir, "r.raw", "raw", writes);
        Qemu.ok(dir, "qemu-img", "convert", "-O", "qcow2", "-o", "cluster_size=4096", "r.raw", "a.qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", "r.raw", "c.qcow2");
        byte[] expected = Files.readAllBytes(dir.resolve("r.raw"));
        for (String name : List.of("a.qcow2", "c.qcow2")) {
            Path p = dir.resolve(name);
            Qcow2Instance layer = (Qcow2Instance) new Qcow2FormatDriver().open(new BytesStorage(name,
                    Files.readAllBytes(p)), new OpenContext(false, false, java.util.Map.of("l2-cache-size", "8192")));
            try (Image img = LayeredImage.builder("qcow2", layer, new BytesStorage(name, Files.readAllBytes(p)))
                    .build(); var pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<?>> futures = new ArrayList<>();
                for (int t = 0; t < 16; t++) {
                    long seed = t;
                    futures.add(pool.submit(() -> {
                        Random rr = new Random(seed);
                        for (int i = 0; i < 200; i++) {
                            int len = 1 + rr.nextInt(20000);
                            long off = rr.nextInt(expected.length - len);
                            byte[] got = new byte[len];
                            img.read(ByteBuffer.wrap(got), off);
                            assertArrayEquals(Arrays.copyOfRange(expected, (int) off, (int) off + len), got);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : futures) {
                    f.get();
                }
            }
        }
    }
}
