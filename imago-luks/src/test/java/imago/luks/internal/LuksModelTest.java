package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.api.ZeroFlag;
import imago.probe.Imago;
import imago.probe.Opener;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Random reads, unaligned writes, zero writes, resizes and reopens of LUKS containers against a byte array. Sectors
 * never written decrypt to noise (as in QEMU), so each image is first written whole, and grown space too; from then
 * on every byte is defined. Concurrent writes to disjoint bytes of the same sectors must all survive the
 * read-modify-write of partial sectors.
 */
class LuksModelTest {
    private static Opener opener(String name) {
        return Imago.opener().location(StorageLocation.memory(name)).format("luks")
                .secret("sec0", "pw".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0");
    }

    private static void create(String name, long size, String mode) throws IOException {
        MemoryStorage.of(name, new byte[0]).close();
        CreateOptions.Builder b = CreateOptions.builder().size(size).secrets(Secrets.create().put("sec0",
                "pw".getBytes(StandardCharsets.UTF_8))).option("key-secret", "sec0").option("iter-time", "1");
        b.option("cipher-mode", mode);
        if (mode.equals("cbc")) {
            b.option("ivgen-alg", "essiv");
        }
        Imago.create(StorageLocation.memory(name), "luks", b.build());
    }

    @Test
    void randomOperationsMatchTheModel() throws IOException {
        for (long seed = 1; seed <= 6; seed++) {
            String mode = seed % 2 == 0 ? "cbc" : "xts";
            String name = "luks-model-" + seed;
            Random r = new Random(seed);
            String what = "seed " + seed + " (" + mode + ")";
            try {
                create(name, 200_000, mode);
                Image image = opener(name).writable(true).open();
                byte[] model = new byte[(int) image.size()];
                assertEquals(200_192, model.length, what + ": rounded up to a sector");
                r.nextBytes(model);
                image.write(ByteBuffer.wrap(model), 0);
                for (int step = 0; step < 60; step++) {
                    int op = r.nextInt(10);
                    if (op < 5) {
                        int off = r.nextInt(model.length);
                        byte[] data = new byte[1 + r.nextInt(Math.min(70_000, model.length - off))];
                        r.nextBytes(data);
                        image.write(ByteBuffer.wrap(data), off);
                        System.arraycopy(data, 0, model, off, data.length);
                    } else if (op == 5) {
                        int off = r.nextInt(model.length);
                        int n = 1 + r.nextInt(Math.min(9000, model.length - off));
                        image.writeZeroes(off, n, EnumSet.noneOf(ZeroFlag.class));
                        Arrays.fill(model, off, off + n, (byte) 0);
                    } else if (op == 6) {
                        image.close();
                        image = opener(name).writable(true).open();
                    } else if (op == 7) {
                        int newSize = 512 * (1 + r.nextInt(600));
                        image.resize(newSize, Preallocation.OFF);
                        int old = model.length;
                        model = Arrays.copyOf(model, newSize);
                        if (newSize > old) {
                            byte[] fresh = new byte[newSize - old];
                            r.nextBytes(fresh);
                            image.write(ByteBuffer.wrap(fresh), old);
                            System.arraycopy(fresh, 0, model, old, fresh.length);
                        }
                        assertEquals(newSize, image.size(), what);
                    } else {
                        int off = r.nextInt(model.length);
                        int n = 1 + r.nextInt(model.length - off);
                        ByteBuffer got = ByteBuffer.allocate(n);
                        image.read(got, off);
                        assertArrayEquals(Arrays.copyOfRange(model, off, off + n), got.array(), what + " step " + step);
                    }
                }
                ByteBuffer all = ByteBuffer.allocate(model.length);
                image.read(all, 0);
                assertArrayEquals(model, all.array(), what + " at the end");
                image.close();
            } finally {
                MemoryStorage.delete(name);
            }
        }
    }

    @Test
    void concurrentWritesToOneSectorAllSurvive() throws Exception {
        String name = "luks-concurrent";
        try {
            create(name, 64 * 512, "xts");
            try (Image image = opener(name).writable(true).open();
                    ExecutorService pool = Executors.newFixedThreadPool(8)) {
                image.write(ByteBuffer.allocate((int) image.size()), 0);
                List<Callable<Void>> tasks = new ArrayList<>();
                // 8 writers, each owning every 8th 16-byte piece of every sector
                for (int w = 0; w < 8; w++) {
                    int writer = w;
                    tasks.add(() -> {
                        for (int piece = writer; piece < 64 * 32; piece += 8) {
                            byte[] b = new byte[16];
                            Arrays.fill(b, (byte) (writer + 1));
                            image.write(ByteBuffer.wrap(b), piece * 16L);
                        }
                        return null;
                    });
                }
                for (Future<Void> f : pool.invokeAll(tasks)) {
                    f.get();
                }
                ByteBuffer all = ByteBuffer.allocate((int) image.size());
                image.read(all, 0);
                for (int piece = 0; piece < 64 * 32; piece++) {
                    for (int i = 0; i < 16; i++) {
                        assertEquals((byte) (piece % 8 + 1), all.get(piece * 16 + i), "piece " + piece);
                    }
                }
            }
        } finally {
            MemoryStorage.delete(name);
        }
    }
}
