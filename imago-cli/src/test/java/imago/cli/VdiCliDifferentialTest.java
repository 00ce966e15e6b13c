package imago.cli;

import static imago.cli.FormatCliDifferential.assertAnswersAsQemuImg;
import static imago.cli.FormatCliDifferential.assertIoAsQemuIo;
import static imago.cli.FormatCliDifferential.assertReportsAndConvertsBack;
import static imago.cli.FormatCliDifferential.convertAsQemuImg;
import static imago.cli.FormatCliDifferential.randomRaw;
import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
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

    /** The file with the image and last-snapshot UUIDs zeroed. */
    private static byte[] masked(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        Arrays.fill(b, 0x188, 0x1a8, (byte) 0);
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"static=off", "static=on"})
    void convertWritesWhatQemuImgWrites(String options) throws IOException {
        Path src = randomRaw(dir, (21L << 20) + 3 * 512, 12);
        Path ours = convertAsQemuImg(dir, src, "vdi", "vdi", options,
                VdiCliDifferentialTest::masked, "the files differ beyond the UUIDs").ours();
        assertReportsAndConvertsBack(dir, ours, "vdi", src);
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
            assertAnswersAsQemuImg(dir, args, img, img);
        }
        Qemu.Output q = Qemu.run(dir, qemuImg, "resize", img, "+1M");
        Run.Result i = imago("resize", img.toString(), "+1M");
        assertEquals(q.status(), i.status(), q.err() + i.err());
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err());
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 2), 0x184);
        }
        assertAnswersAsQemuImg(dir, new String[] {"check"}, img, img);
        assertAnswersAsQemuImg(dir, new String[] {"check", "--output=json"}, img, img);
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
        assertIoAsQemuIo(dir, "vdi", theirs, ours, List.of("write -P 1 0 256k", "write -z 0 64k", "write -z -u 64k 64k",
                "write -z -n 128k 4k", "write -z -n 2M 4k", "write -z 3M 10k", "discard 0 1M", "write -z -u 1M 1M"));
        Qemu.Output compare = Qemu.run(dir, Qemu.img(), "compare", "-f", "vdi", "-F", "vdi", theirs, ours);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertEquals(0, Qemu.check(ours, "vdi").status());
    }
}
