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
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The parallels format through the command, against qemu-img on the same files: {@code convert -O parallels
 * -o cluster_size=} writes qemu-img's file byte for byte, {@code create} prints and makes what qemu-img does, and
 * {@code info}, {@code map} and {@code check [-r leaks|all]} print what qemu-img prints, with its exit statuses,
 * and repair to the same file.
 */
class ParallelsCliDifferentialTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"cluster_size=1M", "cluster_size=64k", "cluster_size=4096"})
    void convertWritesWhatQemuImgWrites(String options) throws IOException {
        Path src = randomRaw(dir, (21L << 20) + 3 * 512, 12);
        Path ours = convertAsQemuImg(dir, src, "parallels", "hds", options,
                Files::readAllBytes, "the files differ").ours();
        assertReportsAndConvertsBack(dir, ours, "parallels", src);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"1000", "5M", "100M", "0"})
    void createPrintsAndMakesWhatQemuImgMakes(String size) throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("ours.hds");
        Path theirs = dir.resolve("theirs.hds");
        String line = imago("create", "-f", "parallels", ours.toString(), size).ok().out();
        assertEquals(Qemu.ok(dir, qemuImg, "create", "-f", "parallels", theirs, size).replace(theirs.toString(),
                ours.toString()), line);
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
        assertEquals(Qemu.ok(dir, qemuImg, "info", ours), imago("info", ours.toString()).ok().out());
    }

    /**
     * Damaged images (the in-use mark, a cluster past the end, space leaked after the last cluster, clusters out of
     * order, QEMU's small-cluster quirk) checked and repaired by both tools: the same report, status and file.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"clean, ''", "dirty, ''", "dirty, -r all", "dirty, -r leaks", "outside, ''", "outside, -r all",
            "leak, ''", "leak, -r leaks", "leak, -r all", "fragmented, ''", "all, -r all", "all, -r leaks",
            "small clusters, ''"})
    void checkAndRepairAsQemuImg(String damage, String repair) throws IOException {
        Path qemuImg = Qemu.img();
        Path base = dir.resolve("base.hds");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "parallels", "-o",
                "cluster_size=" + (damage.equals("small clusters") ? "512" : "64k"), base, "4M");
        Qemu.ok(dir, Qemu.io(), "-f", "parallels", "-c", "write -P 1 1M 64k", "-c", "write -P 2 0 4k", "-c",
                "write -P 3 3M 100k", base);
        try (FileChannel ch = FileChannel.open(base, StandardOpenOption.WRITE)) {
            if (damage.equals("dirty") || damage.equals("all")) {
                ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0x746F6E59), 44);
            }
            if (damage.equals("outside") || damage.equals("all")) {
                ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 500), 64 + 4 * 10);
            }
            if (damage.equals("leak") || damage.equals("all")) {
                ch.write(ByteBuffer.wrap(new byte[] {1}), ch.size() + 100_000);
            }
        }
        Path theirs = Files.copy(base, dir.resolve("theirs.hds"));
        Path ours = Files.copy(base, dir.resolve("ours.hds"));
        String[] args = repair.isEmpty() ? new String[] {"check"} : ("check " + repair).split(" ");
        assertAnswersAsQemuImg(dir, args, theirs, ours);
        if (!repair.isEmpty()) {
            assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), "the repaired files differ");
            assertAnswersAsQemuImg(dir, new String[] {"check", "--output=json"}, theirs, ours);
        }
        // a writable open after the check: refused while dirty, as by qemu-io (imago also refuses clusters past the end)
        boolean left = repair.isEmpty() || repair.equals("-r leaks") && damage.equals("all");
        for (String c : left && (damage.equals("outside") || damage.equals("all")) ? List.<String>of()
                : List.of("write -P 9 2M 4k")) {
            Qemu.Output q = Qemu.run(dir, Qemu.io(), "-f", "parallels", "-c", c, theirs);
            Run.Result i = imago("io", "-f", "parallels", "-c", c, ours.toString());
            assertEquals(q.status(), i.status(), q.err() + " / " + i.err());
        }
    }
    /**
     * Zero writes and discards act as qemu-io's on parallels, whose QEMU driver has neither: {@code -n} (no fallback)
     * fails with "Operation not supported", the others succeed with the same output and leave the same contents
     * (imago leaves unallocated blocks alone where QEMU writes zeroes into new ones).
     */
    @Test
    void zeroWritesAndDiscardsActAsQemuIos() throws IOException {
        Path ours = dir.resolve("zero-imago.hds");
        Path theirs = dir.resolve("zero-qemu.hds");
        for (Path p : List.of(ours, theirs)) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "parallels", p, "4M");
        }
        assertIoAsQemuIo(dir, "parallels", theirs, ours, List.of("write -P 1 0 256k", "write -z 0 64k",
                "write -z -u 64k 64k", "write -z -n 128k 4k", "write -z -n 2M 4k", "write -z 3M 10k", "discard 0 1M",
                "write -z -u 1M 1M"));
        Qemu.Output compare = Qemu.run(dir, Qemu.img(), "compare", "-f", "parallels", "-F", "parallels", theirs, ours);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertEquals(0, Qemu.check(ours, "parallels").status());
    }
}
