package imago.vmdk.internal;

import static imago.vmdk.internal.VmdkQemu.img;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * streamOptimized writes: compressed grains appended in guest order, as qemu-img convert writes them, byte for byte;
 * grains in any order, each once (see {@link VmdkStreamAnyOrderTest}).
 */
class VmdkStreamTest {
    private static final int GRAIN = 64 << 10;

    @TempDir
    Path dir;

    /** Grains of random, repeating and zero bytes, and a short last grain. */
    private byte[] content(long size, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] b = new byte[(int) size];
        for (int g = 0; g * GRAIN < b.length; g++) {
            int from = g * GRAIN;
            int to = Math.min(b.length, from + GRAIN);
            switch (r.nextInt(4)) {
                case 0 -> { }
                case 1 -> { for (int i = from; i < to; i++) { b[i] = (byte) r.nextInt(); } }
                default -> { for (int i = from; i < to; i++) { b[i] = (byte) (i / (1 + g % 7)); } }
            }
        }
        return b;
    }

    private Path stream(String name, long size) throws IOException {
        Path p = dir.resolve(name);
        Imago.create(p, "vmdk", CreateOptions.builder().size(size).option("subformat", "streamOptimized").build());
        return p;
    }

    /**
     * Nonzero grains written compressed from several threads at once, handed out in order: the file is qemu-img
     * convert's, byte for byte, and reads back.
     */
    @Test
    void parallelCompressedWritesInOrderAreQemuConvertsFile() throws Exception {
        long size = 40L * GRAIN + 3 * 512;
        byte[] data = content(size, 3);
        Path raw = Files.write(dir.resolve("src.raw"), data);
        Path q = Files.createDirectory(dir.resolve("q"));
        Path i = Files.createDirectory(dir.resolve("i"));
        img(dir, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, q.resolve("x.vmdk"));
        Imago.create(i.resolve("x.vmdk"), "vmdk", CreateOptions.builder().size(size)
                .option("subformat", "streamOptimized").build());
        try (Image image = Imago.opener().path(i.resolve("x.vmdk")).writable(true).open();
                ExecutorService pool = Executors.newFixedThreadPool(4)) {
            assertFalse(image.supports(Feature.OVERWRITES));
            assertTrue(image.supports(Feature.RANDOM_WRITES));
            assertTrue(image.supports(Feature.COMPRESSED_WRITES));
            List<Future<?>> writes = new ArrayList<>();
            for (long off = 0; off < size; off += GRAIN) {
                int n = (int) Math.min(GRAIN, size - off);
                if (Arrays.equals(data, (int) off, (int) off + n, new byte[n], 0, n)) {
                    continue;
                }
                long at = off;
                writes.add(pool.submit(() -> {
                    image.writeCompressed(ByteBuffer.wrap(data, (int) at, n).slice(), at);
                    return null;
                }));
                if (writes.size() > 8) {
                    writes.removeFirst().get();
                }
            }
            for (Future<?> f : writes) {
                f.get();
            }
        }
        VmdkFiles.assertSameFiles(q, i, Long.MAX_VALUE);
        try (Image image = Imago.open(i.resolve("x.vmdk"))) {
            ByteBuffer all = ByteBuffer.allocate((int) size);
            image.read(all, 0);
            assertArrayEquals(data, all.array());
        }
    }

    @Test
    void takesGrainsInAnyOrderButEachOnce() throws IOException {
        Path p = stream("s.vmdk", 10L * GRAIN);
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            byte[] grain = new byte[GRAIN];
            Arrays.fill(grain, (byte) 7);
            image.write(ByteBuffer.wrap(grain), 5L * GRAIN);           // a plain whole-grain write is compressed
            image.writeCompressed(ByteBuffer.wrap(grain), 2L * GRAIN);
            ByteBuffer check = ByteBuffer.allocate(GRAIN);
            image.read(check, 2L * GRAIN);                              // a read puts held grains in the file
            assertArrayEquals(grain, check.array());
            for (long written : new long[] {2L * GRAIN, 5L * GRAIN}) {
                UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                        () -> image.writeCompressed(ByteBuffer.wrap(grain), written));
                assertEquals(Feature.OVERWRITES, e.feature());
            }
            assertEquals(Feature.OVERWRITES, assertThrows(UnsupportedFeatureException.class,
                    () -> image.write(ByteBuffer.allocate(512), 7L * GRAIN)).feature());
            assertEquals(Feature.OVERWRITES, assertThrows(UnsupportedFeatureException.class,
                    () -> image.write(ByteBuffer.wrap(grain), 7L * GRAIN + 512)).feature());
            image.writeCompressed(ByteBuffer.wrap(grain), 9L * GRAIN);
            image.writeCompressed(ByteBuffer.wrap(grain), 0);
        }
        assertEquals("No errors were found on the image.\n", Qemu.ok(dir, Qemu.img(), "check", p));
        Path raw = dir.resolve("back.raw");
        img(dir, "convert", "-O", "raw", p, raw);
        byte[] back = Files.readAllBytes(raw);
        for (int g = 0; g < 10; g++) {
            byte expected = g == 0 || g == 2 || g == 5 || g == 9 ? (byte) 7 : 0;
            assertEquals(expected, back[g * GRAIN], "grain " + g);
        }
    }

    /** Writing to a stream qemu-img wrote: its grains are refused, the others taken in any order. */
    @Test
    void writesToAStreamQemuWrote() throws IOException {
        byte[] data = content(12L * GRAIN, 5);
        data[0] = 1;                                    // grain 0 written, grain 7 left out (zero)
        Arrays.fill(data, 7 * GRAIN, 8 * GRAIN, (byte) 0);
        Path raw = Files.write(dir.resolve("src.raw"), data);
        Path p = dir.resolve("q.vmdk");
        img(dir, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, p);
        byte[] grain = new byte[GRAIN];
        Arrays.fill(grain, (byte) 0x3c);
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            assertThrows(UnsupportedFeatureException.class, () -> image.writeCompressed(ByteBuffer.wrap(grain), 0));
            image.writeCompressed(ByteBuffer.wrap(grain), 7L * GRAIN);
        }
        assertEquals("No errors were found on the image.\n", Qemu.ok(dir, Qemu.img(), "check", p));
        Qemu.ok(dir, Qemu.io(), "-r", "-c", "read -P 0x3c " + 7L * GRAIN + " 64k", p);
        Path fresh = stream("fresh.vmdk", 12L * GRAIN);
        try (Image image = Imago.opener().path(fresh).writable(true).open()) {
            image.writeCompressed(ByteBuffer.wrap(grain), 3L * GRAIN);
        }
        try (Image image = Imago.opener().path(fresh).writable(true).open()) {
            assertThrows(UnsupportedFeatureException.class,
                    () -> image.writeCompressed(ByteBuffer.wrap(grain), 3L * GRAIN));
            image.writeCompressed(ByteBuffer.wrap(grain), 11L * GRAIN);
            image.writeCompressed(ByteBuffer.wrap(grain), 2L * GRAIN);
        }
        assertEquals("No errors were found on the image.\n", Qemu.ok(dir, Qemu.img(), "check", fresh));
        Qemu.ok(dir, Qemu.io(), "-r", "-c", "read -P 0x3c " + 2L * GRAIN + " 128k", "-c",
                "read -P 0x3c " + 11L * GRAIN + " 64k", "-c", "read -P 0 0 128k", fresh);
    }

    /** A stream ending in its directory and footer is finished: not opened for writing. */
    @Test
    void aFinishedVmwareStreamIsNotWritable() throws IOException {
        Path module = Path.of("/usr/lib/python3/dist-packages/VMDKstream.py");
        Qemu.requireInstalled(Files.exists(module), "python3-vmdkstream is not installed");
        Files.write(dir.resolve("src.raw"), content(4L * GRAIN, 9));
        Qemu.ok(dir, Path.of("/usr/bin/python3"), "-c",
                "import VMDKstream; VMDKstream.convert_to_stream('src.raw', 'py.vmdk')");
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Imago.opener().path(dir.resolve("py.vmdk")).writable(true).open());
        assertEquals(Feature.OVERWRITES, e.feature());
    }
}
