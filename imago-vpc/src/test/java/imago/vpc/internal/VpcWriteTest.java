package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.VhdiInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Writes: the same writes through qemu-io and imago leave byte-identical files; what imago writes qemu-img reads
 * as written ({@code qemu-img compare} against the expected raw image), maps as imago does, and vhdiinfo accepts.
 */
class VpcWriteTest {

    /** One write: {@code length} bytes of {@code pattern} at {@code offset}. */
    record Write(long offset, int length, int pattern) {
        String qemuIo() {
            return "write -P 0x" + Integer.toHexString(pattern) + " " + offset + " " + length;
        }
    }

    static List<Write> randomWrites(Random r, long size, int count) {
        List<Write> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long off = 512L * r.nextInt((int) (size / 512));
            int len = (int) Math.min(size - off, 512L * (1 + r.nextInt(3000)));
            out.add(new Write(off, len, 1 + r.nextInt(255)));
        }
        return out;
    }

    static void write(Image image, Write w) throws IOException {
        byte[] b = new byte[w.length()];
        Arrays.fill(b, (byte) w.pattern());
        image.write(ByteBuffer.wrap(b), w.offset());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"subformat=dynamic", "subformat=dynamic,force_size=on", "subformat=fixed"})
    void theSameWritesLeaveTheSameFileAsQemuIo(String options, @TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "-o", options, "q.vhd", (30L << 20) + 1234);
        Files.copy(dir.resolve("q.vhd"), dir.resolve("i.vhd"));
        long size = QemuReads.qemuSize(dir, dir.resolve("q.vhd"), "vpc");
        List<Write> writes = randomWrites(new Random(options.hashCode()), size, 25);
        QemuReads.qemuIo(dir, "vpc", "q.vhd", writes.stream().map(Write::qemuIo).toList());
        try (Image image = Imago.opener().path(dir.resolve("i.vhd")).format("vpc").writable(true).open()) {
            for (Write w : writes) {
                write(image, w);
            }
        }
        assertEquals(-1, Files.mismatch(dir.resolve("q.vhd"), dir.resolve("i.vhd")), "files differ");
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {11, 12, 13})
    void qemuImgReadsWhatImagoWrites(long seed, @TempDir Path dir) throws IOException {
        Qemu.require();
        Random r = new Random(seed);
        Path img = dir.resolve("i.vhd");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "i.vhd", (20L << 20) + 512L * r.nextInt(9000));
        long size = QemuReads.qemuSize(dir, img, "vpc");
        byte[] model = new byte[(int) size];
        try (Image image = Imago.opener().path(img).format("vpc").writable(true).open()) {
            for (Write w : randomWrites(r, size, 30)) {
                if (r.nextInt(5) == 0) {
                    image.writeZeroes(w.offset(), w.length(), Set.of());
                    Arrays.fill(model, (int) w.offset(), (int) w.offset() + w.length(), (byte) 0);
                } else {
                    write(image, w);
                    Arrays.fill(model, (int) w.offset(), (int) w.offset() + w.length(), (byte) w.pattern());
                }
            }
            image.flush();
            assertTrue(Arrays.equals(model, QemuReads.readAll(image)));
        }
        Files.write(dir.resolve("model.raw"), model);
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "vpc", "-F", "raw", img, dir.resolve("model.raw"));
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        QemuReads.assertReadsLikeQemu(dir, img, "vpc");
        assertTrue(VhdiInfo.run(dir, img).contains("(" + size + " bytes)"));
    }

    /** A write that starts inside a sector and ends inside another, over unallocated and allocated blocks. */
    @Test
    void unalignedWritesKeepTheBytesAroundThem(@TempDir Path dir) throws IOException {
        Qemu.require();
        Path img = dir.resolve("i.vhd");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "i.vhd", 8L << 20);
        QemuReads.qemuIo(dir, "vpc", "i.vhd", List.of("write -P 0x11 0 1M"));
        try (Image image = Imago.opener().path(img).format("vpc").writable(true).open()) {
            image.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 1000);
            image.write(ByteBuffer.wrap(new byte[5000]).put(0, (byte) 9), (2L << 20) - 77);
        }
        QemuReads.qemuIo(dir, "vpc", "i.vhd", List.of("read -P 0x11 0 1000", "read -P 0x11 1003 " + ((1 << 20) - 1003),
                "read -P 0 " + ((2L << 20) - 76) + " 4999", "read -P 9 " + ((2L << 20) - 77) + " 1"));
    }

    /** Threads writing at once, each its own ranges across many unallocated blocks: every byte lands, once. */
    @Test
    void concurrentAllocatingWritesKeepEveryByte(@TempDir Path dir) throws Exception {
        Qemu.require();
        Path img = dir.resolve("i.vhd");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "-o", "force_size=on", "i.vhd", 64L << 20);
        byte[] model = new byte[64 << 20];
        int threads = 8;
        try (Image image = Imago.opener().path(img).format("vpc").writable(true).open();
                var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            List<java.util.concurrent.Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                done.add(pool.submit(() -> {
                    // thread t owns every 8th 96 KiB slice: slices share blocks with the other threads'
                    for (long off = thread * 98_304L; off + 98_304 <= model.length; off += threads * 98_304L) {
                        byte[] b = new byte[98_304];
                        Arrays.fill(b, (byte) (thread + 1));
                        image.write(ByteBuffer.wrap(b), off);
                    }
                    return null;
                }));
                for (long off = thread * 98_304L; off + 98_304 <= model.length; off += threads * 98_304L) {
                    Arrays.fill(model, (int) off, (int) off + 98_304, (byte) (thread + 1));
                }
            }
            for (var f : done) {
                f.get();
            }
        }
        Files.write(dir.resolve("model.raw"), model);
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "vpc", "-F", "raw", img, dir.resolve("model.raw"));
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        // footer copy, header and a BAT sector, then 32 blocks (bitmap and data), each allocated once, then the footer
        assertEquals(2048 + 32L * (512 + (2 << 20)) + 512, Files.size(img), "32 blocks, each allocated once");
    }

    @Test
    void readOnlyImagesRefuseWrites(@TempDir Path dir) throws IOException {
        Qemu.require();
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "i.vhd", 8L << 20);
        try (Image image = Imago.opener().path(dir.resolve("i.vhd")).format("vpc").open()) {
            assertThrows(ReadOnlyImageException.class, () -> image.write(ByteBuffer.allocate(512), 0));
        }
    }

    /** Zeroes over unallocated blocks allocate nothing; discarding whole blocks unmaps them. */
    @Test
    void zeroWritesAndDiscardsLeaveBlocksUnallocated(@TempDir Path dir) throws IOException {
        Qemu.require();
        Path img = dir.resolve("i.vhd");
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "i.vhd", 16L << 20);
        long before = Files.size(img);
        try (Image image = Imago.opener().path(img).format("vpc").writable(true).open()) {
            image.writeZeroes(0, 8L << 20, Set.of());
            assertEquals(before, Files.size(img), "no block allocated for zeroes");
            write(image, new Write(4L << 20, 3 << 20, 0x42));
            image.writeZeroes((4L << 20) + 100, 512, Set.of());
            image.discard(4L << 20, 2L << 20);
            image.flush();
        }
        byte[] expected = new byte[16 << 20];
        Arrays.fill(expected, 6 << 20, 7 << 20, (byte) 0x42);
        Files.write(dir.resolve("model.raw"), expected);
        Qemu.Output cmp = Qemu.run(dir, "qemu-img", "compare", "-f", "vpc", "-F", "raw", img, dir.resolve("model.raw"));
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        // the block at 4 MiB (allocated first, after the BAT) was discarded; the one at 6 MiB follows it
        assertEquals(List.of("0+6291456 d0 PZ-", "6291456+2097152 d0 P-D @" + (2048 + (512 + (2 << 20)) + 512),
                "8388608+" + (QemuReads.qemuSize(dir, img, "vpc") - (8 << 20)) + " d0 PZ-"), QemuReads.qemuMap(dir, img, "vpc"));
    }
}
