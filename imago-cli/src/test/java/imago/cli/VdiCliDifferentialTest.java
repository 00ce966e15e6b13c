package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The vdi format through the command, against qemu-img on the same files: {@code convert -O vdi} writes the file
 * qemu-img writes (but for the two random UUIDs), {@code create} prints and makes what qemu-img does, and
 * {@code info}, {@code map} and {@code check} print what qemu-img prints, with its exit statuses.
 */
class VdiCliDifferentialTest {
    @TempDir
    Path dir;

    /** A raw source with random data and zero runs; returns its path. */
    private Path source(long size) throws IOException {
        Path src = dir.resolve("src.raw");
        Random r = new Random(size);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            raf.setLength(size);
            byte[] data = new byte[300_000];
            for (int i = 0; i < 12; i++) {
                r.nextBytes(data);
                raf.seek(r.nextLong(size - data.length) & ~511L);
                raf.write(data, 0, 512 + r.nextInt(data.length - 512));
            }
        }
        return src;
    }

    /** The file with the image and last-snapshot UUIDs zeroed. */
    private static byte[] masked(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        Arrays.fill(b, 0x188, 0x1a8, (byte) 0);
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"static=off", "static=on"})
    void convertWritesWhatQemuImgWrites(String options) throws IOException {
        Path qemuImg = Qemu.img();
        Path src = source((21L << 20) + 3 * 512);
        Path ours = dir.resolve("ours.vdi");
        Path theirs = dir.resolve("theirs.vdi");
        imago("convert", "-f", "raw", "-O", "vdi", "-o", options, src.toString(), ours.toString()).ok();
        Qemu.ok(dir, qemuImg, "convert", "-f", "raw", "-O", "vdi", "-o", options, src, theirs);
        assertEquals(Files.size(theirs), Files.size(ours), "file length");
        assertArrayEquals(masked(theirs), masked(ours), "the files differ beyond the UUIDs");
        Qemu.Output cmp = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "vdi", src, ours);
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
        for (String[] args : new String[][] {{"info", "--output=json"}, {"info"}, {"map", "--output=json"}, {"map"},
                {"check"}, {"check", "--output=json"}}) {
            assertSame(qemuImg, args, ours);
        }
        Path back = dir.resolve("back.raw");
        imago("convert", "-f", "vdi", "-O", "raw", ours.toString(), back.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(back));
    }

    /** Runs {@code args} + {@code image} through both tools and asserts the same status, output and errors. */
    private void assertSame(Path qemuImg, String[] args, Path image) {
        Object[] command = new Object[args.length + 2];
        command[0] = qemuImg;
        System.arraycopy(args, 0, command, 1, args.length);
        command[args.length + 1] = image;
        String[] ours = Arrays.copyOf(args, args.length + 1);
        ours[args.length] = image.toString();
        Qemu.Output q = Qemu.run(dir, command);
        Run.Result i = imago(ours);
        String what = String.join(" ", args);
        assertEquals(q.out(), i.out(), what);
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err(), what);
        assertEquals(q.status(), i.status(), what);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"1000", "5M", "100M", "0"})
    void createPrintsAndMakesWhatQemuImgMakes(String size) throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("ours.vdi");
        Path theirs = dir.resolve("theirs.vdi");
        String line = imago("create", "-f", "vdi", ours.toString(), size).ok().out();
        assertEquals(Qemu.ok(dir, qemuImg, "create", "-f", "vdi", theirs, size).replace(theirs.toString(),
                ours.toString()), line);
        assertArrayEquals(masked(theirs), masked(ours));
        assertEquals(Qemu.ok(dir, qemuImg, "info", ours), imago("info", ours.toString()).ok().out());
    }

    /** check of a damaged map (a count too high: exit 2), repairs and resize are answered as qemu-img answers. */
    @Test
    void checkRepairAndResizeActAsQemuImgs() throws IOException {
        Path qemuImg = Qemu.img();
        Path img = dir.resolve("d.vdi");
        imago("create", "-q", "-f", "vdi", img.toString(), "8M").ok();
        imago("io", "-c", "write -P 7 1M 4k", img.toString()).ok();
        for (String[] args : new String[][] {{"check"}, {"check", "-r", "leaks"}, {"check", "-r", "all"}}) {
            assertSame(qemuImg, args, img);
        }
        Qemu.Output q = Qemu.run(dir, qemuImg, "resize", img, "+1M");
        Run.Result i = imago("resize", img.toString(), "+1M");
        assertEquals(q.status(), i.status(), q.err() + i.err());
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err());
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 2), 0x184);
        }
        assertSame(qemuImg, new String[] {"check"}, img);
        assertSame(qemuImg, new String[] {"check", "--output=json"}, img);
    }
    /**
     * Zero writes and discards act as qemu-io's on vdi, whose QEMU driver has neither: {@code -n} (no fallback)
     * fails with "Operation not supported", the others succeed with the same output and leave the same contents
     * (imago leaves unallocated blocks alone where QEMU writes zeroes into new ones).
     */
    @Test
    void zeroWritesAndDiscardsActAsQemuIos() throws IOException {
        Path ours = dir.resolve("zero-imago.vdi");
        Path theirs = dir.resolve("zero-qemu.vdi");
        for (Path p : List.of(ours, theirs)) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "vdi", p, "4M");
        }
        Pattern timing = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");
        for (String c : List.of("write -P 1 0 256k", "write -z 0 64k", "write -z -u 64k 64k", "write -z -n 128k 4k",
                "write -z -n 2M 4k", "write -z 3M 10k", "discard 0 1M", "write -z -u 1M 1M")) {
            Qemu.Output q = Qemu.run(dir, Qemu.io(), "-f", "vdi", "-c", c, theirs);
            Run.Result m = imago("io", "-f", "vdi", "-c", c, ours.toString());
            assertEquals(q.status(), m.status(), c);
            assertEquals(timing.matcher(q.out()).replaceAll("$1"), timing.matcher(m.out()).replaceAll("$1"), c);
            assertEquals(q.err(), m.err(), c);
        }
        Qemu.Output compare = Qemu.run(dir, Qemu.img(), "compare", "-f", "vdi", "-F", "vdi", theirs, ours);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertEquals(0, Qemu.check(ours, "vdi").status());
    }
}
