package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Mapping;
import imago.api.PendingWrite;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.Inflater;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Compressed writes ({@link Image#writeCompressed}) against a byte-array model, from several threads at
 * once: {@code qemu-img check} must be clean and count compressed clusters, {@code qemu-img compare} must
 * find the image equal to the model, and {@code qemu-img map} must show the compressed clusters as data
 * without a host offset.
 */
class Qcow2CompressedWriteTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** One layout: create options and virtual size. */
    record Case(String options, long size) {
        @Override
        public String toString() {
            return "[" + options + "] size=" + size;
        }
    }

    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (String type : new String[] {"zlib", "zstd"}) {
            out.add(new Case("compression_type=" + type + ",cluster_size=4096", (3L << 20) + 1536));
            out.add(new Case("compression_type=" + type + ",cluster_size=65536", (6L << 20) + 4096));
            out.add(new Case("compression_type=" + type + ",cluster_size=2M", 16L << 20));
        }
        out.add(new Case("cluster_size=4096,refcount_bits=1", 2L << 20));
        out.add(new Case("cluster_size=4096,refcount_bits=2", 1L << 20));
        out.add(new Case("cluster_size=4096,refcount_bits=64", 1L << 20));
        out.add(new Case("cluster_size=512,refcount_bits=8", 1L << 20));
        out.add(new Case("compat=0.10", 4L << 20));
        return out.stream();
    }

    static int counter;

    /** Fills {@code data} with one of: zeroes, a constant, text-like bytes, random bytes. */
    static void fill(byte[] data, Random r, int kind) {
        switch (kind) {
            case 0 -> Arrays.fill(data, (byte) 0);
            case 1 -> Arrays.fill(data, (byte) r.nextInt(256));
            case 2 -> {
                // 16 symbols: compresses to about half
                for (int i = 0; i < data.length; i++) {
                    data[i] = (byte) ('a' + r.nextInt(16));
                }
            }
            default -> r.nextBytes(data);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void compressedClusters(Case c) throws Exception {
        long seed = Long.getLong("imago.seed", new Random().nextLong());
        System.out.println("Qcow2CompressedWriteTest " + c + " seed: " + seed);
        Random r = new Random(seed);
        Path img = dir.resolve("c" + counter++ + ".qcow2");
        CreateOptions.Builder b = CreateOptions.builder().size(c.size());
        Qcow2CreateTest.parse(c.options()).forEach(b::option);
        Imago.create(img, "qcow2", b.build());
        int cs = 1 << Files.readAllBytes(img)[23];
        byte[] model = new byte[(int) c.size()];
        long clusters = (c.size() + cs - 1) / cs;
        List<Long> order = new ArrayList<>();
        for (long k = 0; k < clusters; k++) {
            // leave some clusters unallocated for the second session
            if (k % 5 != 3) {
                order.add(k);
            }
        }
        Collections.shuffle(order, r);
        List<byte[]> contents = new ArrayList<>();
        for (long k : order) {
            int n = (int) Math.min(cs, c.size() - k * cs);
            byte[] data = new byte[n];
            fill(data, r, r.nextInt(8) < 5 ? 2 : r.nextInt(4));
            contents.add(data);
            System.arraycopy(data, 0, model, (int) (k * cs), n);
        }
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            // several threads at once, as a parallel convert
            try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
                List<Future<Void>> done = new ArrayList<>();
                for (int i = 0; i < order.size(); i++) {
                    long k = order.get(i);
                    byte[] data = contents.get(i);
                    done.add(pool.submit(() -> {
                        image.writeCompressed(ByteBuffer.wrap(data), k * cs);
                        return null;
                    }));
                }
                for (Future<Void> f : done) {
                    f.get();
                }
            }
            Qcow2WriteTest.assertReads(image, model);
            assertTrue(order.stream().anyMatch(k -> isCompressed(image, k * cs)), "no compressed cluster");
            // compressed data only goes to unallocated clusters, as in QEMU
            long taken = order.getFirst() * cs;
            int n = (int) Math.min(cs, c.size() - taken);
            byte[] zeroes = new byte[n];
            assertThrows(ImageException.class, () -> image.writeCompressed(ByteBuffer.wrap(zeroes), taken));
            assertThrows(IllegalArgumentException.class, () -> image.writeCompressed(ByteBuffer.allocate(cs), 1));
        }
        verify(img, model, true);

        // a second session: more compressed clusters (packed after a reopen), overwrites of compressed ones
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (long k = 3; k < clusters; k += 5) {
                int n = (int) Math.min(cs, c.size() - k * cs);
                byte[] data = new byte[n];
                fill(data, r, 2);
                image.writeCompressed(ByteBuffer.wrap(data), k * cs);
                System.arraycopy(data, 0, model, (int) (k * cs), n);
            }
            for (int i = 0; i < 10; i++) {
                int length = 1 + r.nextInt(Math.min(3 * cs, model.length));
                long offset = (long) (r.nextDouble() * (model.length - length + 1));
                Qcow2WriteTest.write(image, model, offset, length, r);
            }
            image.discard(0, 4L * cs);
            image.writeZeroes(4L * cs, 2L * cs);
            Arrays.fill(model, 0, 6 * cs, (byte) 0);
            Qcow2WriteTest.assertReads(image, model);
        }
        verify(img, model, false);
    }

    private static boolean isCompressed(Image image, long offset) {
        try {
            return image.mapping(offset, 1) instanceof Mapping.Special;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static final Pattern COMPRESSED = Pattern.compile("([0-9.]+)% compressed clusters");

    /** check clean (counting compressed clusters), compare equal, map shows compressed data without offset. */
    static void verify(Path img, byte[] model, boolean expectCompressed) throws IOException {
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", img);
        assertEquals(0, check.status(), () -> "qemu-img check:\n" + check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        if (expectCompressed) {
            Matcher m = COMPRESSED.matcher(check.out());
            assertTrue(m.find() && Double.parseDouble(m.group(1)) > 0, check.out());
            String map = Qemu.ok(dir, "qemu-img", "map", "--output=json", img);
            assertTrue(map.lines().anyMatch(l -> l.contains("\"data\": true") && !l.contains("\"offset\"")), map);
        }
        Qcow2WriteTest.assertReadsModel(img, model);
    }

    @Test
    void incompressibleClusterIsStoredNormally() throws IOException {
        Path img = dir.resolve("incompressible.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).build());
        byte[] data = new byte[65536];
        new Random(3).nextBytes(data);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.writeCompressed(ByteBuffer.wrap(data), 65536);
            assertTrue(image.mapping(65536, 65536) instanceof Mapping.Data);
        }
        byte[] model = new byte[1 << 20];
        System.arraycopy(data, 0, model, 65536, data.length);
        verify(img, model, false);
    }

    /**
     * {@link Image#compress} on several threads, the stores made afterwards in reverse guest order: the compressed
     * clusters are packed in the order of the stores, an incompressible one is stored the ordinary way, and a
     * compressed cluster never stored leaves its cluster unallocated.
     */
    @Test
    void compressedOnSeveralThreadsStoredInTheOrderOfTheStores() throws Exception {
        Path img = dir.resolve("two-phase.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).option("cluster_size", "4096").build());
        byte[] model = new byte[1 << 20];
        Random r = new Random(5);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open();
                ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<PendingWrite>> pending = new ArrayList<>();
            for (int k = 0; k < 9; k++) {
                byte[] data = new byte[4096];
                fill(data, r, k == 3 ? 3 : 2);
                if (k < 8) {
                    System.arraycopy(data, 0, model, k * 4096, 4096);
                }
                long offset = k * 4096L;
                pending.add(pool.submit(() -> image.compress(ByteBuffer.wrap(data), offset)));
            }
            for (int k = 7; k >= 0; k--) {
                pending.get(k).get().write();
            }
            // cluster 8 compressed but never stored
            assertEquals(Mapping.Unallocated.class, image.mapping(8 * 4096L, 4096).getClass());
            assertTrue(image.mapping(3 * 4096L, 4096) instanceof Mapping.Data, "incompressible: stored as it is");
        }
        verify(img, model, true);
        // packed in store order: cluster 7's bytes first, cluster 0's last
        long[] host = new long[8];
        ByteBuffer file = ByteBuffer.wrap(Files.readAllBytes(img));
        long l2 = file.getLong((int) file.getLong(40)) & 0x00ff_ffff_ffff_fe00L;
        for (int k = 0; k < 8; k++) {
            host[k] = file.getLong((int) l2 + 8 * k) & ((1L << (62 - (12 - 8))) - 1);
        }
        for (int k = 0; k < 7; k++) {
            if (k != 3 && k + 1 != 3) {
                assertTrue(host[k] > host[k + 1], Arrays.toString(host));
            }
        }
    }

    /** The empty compressed write that ends qemu-img convert -c rounds the file up to a sector, as QEMU's does. */
    @Test
    void emptyCompressedWriteRoundsTheFileUpToASector() throws IOException {
        Path img = dir.resolve("end.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).build());
        byte[] data = new byte[65536];
        fill(data, new Random(9), 2);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            image.writeCompressed(ByteBuffer.wrap(data), 0);
            image.flush();
            assertTrue(Files.size(img) % 512 != 0, "compressed bytes end inside a sector: " + Files.size(img));
            image.writeCompressed(ByteBuffer.allocate(0), 0);
        }
        assertEquals(0, Files.size(img) % 512);
        byte[] model = new byte[1 << 20];
        System.arraycopy(data, 0, model, 0, data.length);
        verify(img, model, true);
    }

    @Test
    void qemuWritesCompressedNextToImagoCompressedClusters() throws IOException {
        Path img = dir.resolve("mixed.qcow2");
        Imago.create(img, "qcow2", CreateOptions.builder().size(1 << 20).option("cluster_size", "4096").build());
        byte[] model = new byte[1 << 20];
        Random r = new Random(11);
        try (Image image = Imago.opener().path(img).format("qcow2").writable(true).open()) {
            for (int k = 0; k < 8; k++) {
                byte[] data = new byte[4096];
                fill(data, r, 2);
                image.writeCompressed(ByteBuffer.wrap(data), k * 4096L);
                System.arraycopy(data, 0, model, k * 4096, 4096);
            }
        }
        Qcow2DifferentialTest.qemuIo(dir, img.toString(), "qcow2", List.of("write -c -P 0x5a 64k 4k"));
        Arrays.fill(model, 64 << 10, 68 << 10, (byte) 0x5a);
        verify(img, model, true);
    }

    @Test
    void deflateRoundTripsAndGivesUpOnRandomData() throws Exception {
        byte[] src = new byte[65536];
        Random r = new Random(5);
        fill(src, r, 2);
        byte[] dst = new byte[src.length - 1];
        int n = Qcow2Deflate.compress(ByteBuffer.wrap(src), ByteBuffer.wrap(dst));
        assertTrue(n > 0 && n < src.length * 6 / 10, "compressed to " + n);
        Inflater inflater = new Inflater(true);
        inflater.setInput(dst, 0, n);
        byte[] back = new byte[src.length];
        assertEquals(src.length, inflater.inflate(back));
        assertTrue(inflater.finished());
        inflater.end();
        assertArrayEquals(src, back);
        r.nextBytes(src);
        assertEquals(-1, Qcow2Deflate.compress(ByteBuffer.wrap(src), ByteBuffer.wrap(dst)));
        assertFalse(Qcow2Zstd.compress(ByteBuffer.wrap(src), ByteBuffer.wrap(dst)) > 0);
        ByteBuffer direct = ByteBuffer.allocateDirect(src.length).put(0, src);
        assertEquals(-1, Qcow2Deflate.compress(direct, ByteBuffer.allocateDirect(dst.length)));
        assertFalse(Qcow2Zstd.compress(direct, ByteBuffer.allocateDirect(dst.length)) > 0);
    }

    @Test
    void directAndHeapBuffersCompressToTheSameBytes() throws Exception {
        byte[] src = new byte[65536];
        fill(src, new Random(11), 2);
        ByteBuffer direct = ByteBuffer.allocateDirect(src.length + 100).position(100).put(src).position(100);
        for (boolean zstd : new boolean[] {false, true}) {
            byte[] heapOut = new byte[src.length - 1];
            ByteBuffer heap = ByteBuffer.wrap(heapOut);
            int n = zstd ? Qcow2Zstd.compress(ByteBuffer.wrap(src), heap) : Qcow2Deflate.compress(ByteBuffer.wrap(src),
                    heap);
            assertTrue(n > 0, "compressed to " + n);
            // output at a position: written there, positions and limits left as they were
            ByteBuffer out = ByteBuffer.allocateDirect(src.length + 10).position(10);
            int m = zstd ? Qcow2Zstd.compress(direct, out) : Qcow2Deflate.compress(direct, out);
            assertEquals(n, m);
            assertEquals(10, out.position());
            assertEquals(100, direct.position());
            byte[] directOut = new byte[m];
            out.get(10, directOut);
            assertArrayEquals(Arrays.copyOf(heapOut, n), directOut);
        }
    }
}
