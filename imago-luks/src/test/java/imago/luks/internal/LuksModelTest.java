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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Random reads, unaligned writes, zero writes, resizes and reopens of LUKS1 and LUKS2 containers (LUKS2 over 512-
 * and 4096-byte sectors) against a byte array: partial sectors are read back, decrypted, merged and re-encrypted.
 * Sectors never written decrypt to noise (as in QEMU), so each image is first written whole, and grown space too;
 * from then on every byte is defined. Concurrent writes to disjoint bytes of the same sectors must all survive the
 * read-modify-write of partial sectors.
 */
class LuksModelTest {

    /** A container to create: its LUKS version, sector size and cipher, and the seed of its random steps. */
    record Container(int version, int sectorSize, String mode, long seed) {
        /** LUKS1 rounds its 200,000 bytes up to a 512-byte sector, as QEMU does; LUKS2 is made whole. */
        long createSize() {
            return version == 1 ? 200_000 : 64 * 4096;
        }

        String name(String test) {
            return test + "-luks" + version + "-" + sectorSize + "-" + mode + "-" + seed;
        }

        long expectedSize() {
            return version == 1 ? 200_192 : 64 * 4096;
        }

        Opener opener(String name) {
            return Imago.opener().location(StorageLocation.memory(name)).format("luks")
                    .secret("sec0", "pw".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0");
        }

        void create(String name, long size) throws IOException {
            MemoryStorage.of(name, new byte[0]).close();
            CreateOptions.Builder b = CreateOptions.builder().size(size).secrets(Secrets.create().put("sec0",
                    "pw".getBytes(StandardCharsets.UTF_8))).option("key-secret", "sec0").option("iter-time", "1")
                    .option("cipher-mode", mode).option("ivgen-alg", mode.equals("cbc") ? "essiv" : "plain64");
            if (version == 2) {
                b.option("luks-version", "2").option("pbkdf", "pbkdf2")
                        .option("sector-size", Integer.toString(sectorSize));
            }
            Imago.create(StorageLocation.memory(name), "luks", b.build());
        }
    }

    static List<Container> containers() {
        return List.of(new Container(1, 512, "xts", 1), new Container(1, 512, "cbc", 2),
                new Container(1, 512, "xts", 3), new Container(1, 512, "cbc", 4),
                new Container(2, 512, "xts", 1), new Container(2, 4096, "xts", 2),
                new Container(2, 512, "cbc", 3), new Container(2, 4096, "xts", 4));
    }

    @ParameterizedTest
    @MethodSource("containers")
    void randomOperationsMatchTheModel(Container c) throws IOException {
        String name = c.name("model");
        Random r = new Random(c.seed());
        int sector = c.sectorSize();
        try {
            c.create(name, c.createSize());
            Image image = c.opener(name).writable(true).open();
            byte[] model = new byte[(int) image.size()];
            assertEquals(c.expectedSize(), model.length, "rounded up to a sector");
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
                    image = c.opener(name).writable(true).open();
                } else if (op == 7) {
                    int newSize = sector * (1 + r.nextInt(600 * 512 / sector));
                    image.resize(newSize, Preallocation.OFF);
                    int old = model.length;
                    model = Arrays.copyOf(model, newSize);
                    if (newSize > old) {
                        byte[] fresh = new byte[newSize - old];
                        r.nextBytes(fresh);
                        image.write(ByteBuffer.wrap(fresh), old);
                        System.arraycopy(fresh, 0, model, old, fresh.length);
                    }
                    assertEquals(newSize, image.size());
                } else {
                    int off = r.nextInt(model.length);
                    int n = 1 + r.nextInt(model.length - off);
                    ByteBuffer got = ByteBuffer.allocate(n);
                    image.read(got, off);
                    assertArrayEquals(Arrays.copyOfRange(model, off, off + n), got.array(), "step " + step);
                }
            }
            ByteBuffer all = ByteBuffer.allocate(model.length);
            image.read(all, 0);
            assertArrayEquals(model, all.array(), "at the end");
            image.close();
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** One of each cipher and sector size. */
    static List<Container> concurrentContainers() {
        return List.of(new Container(1, 512, "xts", 1), new Container(1, 512, "cbc", 2),
                new Container(2, 4096, "xts", 2));
    }

    @ParameterizedTest
    @MethodSource("concurrentContainers")
    void concurrentWritesToOneSectorAllSurvive(Container c) throws Exception {
        String name = c.name("concurrent");
        int sectors = 64 * 512 / c.sectorSize();
        try {
            c.create(name, 64 * 512);
            try (Image image = c.opener(name).writable(true).open();
                    ExecutorService pool = Executors.newFixedThreadPool(8)) {
                assertEquals(64 * 512, image.size());
                image.write(ByteBuffer.allocate((int) image.size()), 0);
                List<Callable<Void>> tasks = new ArrayList<>();
                // 8 writers, each owning every 8th 16-byte piece of every sector
                int pieces = sectors * c.sectorSize() / 16;
                for (int w = 0; w < 8; w++) {
                    int writer = w;
                    tasks.add(() -> {
                        for (int piece = writer; piece < pieces; piece += 8) {
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
                for (int piece = 0; piece < pieces; piece++) {
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
