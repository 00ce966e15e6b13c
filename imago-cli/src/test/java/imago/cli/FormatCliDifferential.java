package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;

/**
 * The steps the per-format command tests against qemu-img share (vdi, parallels, vpc, vhdx, qed and qcow): a raw
 * source to convert, one {@code qemu-img} command and the same through {@code imago}, and qemu-io command lists
 * through {@code imago io}.
 */
final class FormatCliDifferential {
    /** qemu-io's timing line: what follows the operation count differs from run to run. */
    private static final Pattern TIMING = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");

    private FormatCliDifferential() {
    }

    /**
     * Writes {@code src.raw} in {@code dir}: {@code size} bytes of zeroes with {@code runs} runs of random data (up
     * to 300,000 bytes, from sector boundaries), the same for the same size; returns its path.
     */
    static Path randomRaw(Path dir, long size, int runs) throws IOException {
        Path src = dir.resolve("src.raw");
        Random r = new Random(size);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            raf.setLength(size);
            byte[] data = new byte[300_000];
            for (int i = 0; i < runs; i++) {
                r.nextBytes(data);
                raf.seek(r.nextLong(size - data.length) & ~511L);
                raf.write(data, 0, 512 + r.nextInt(data.length - 512));
            }
        }
        return src;
    }

    /**
     * Runs {@code qemu-img args theirs} and {@code imago args ours}: the same output and errors (with {@code theirs}
     * read as {@code ours} and qemu-img's program name as imago's), and the same exit status.
     */
    static void assertAnswersAsQemuImg(Path dir, String[] args, Path theirs, Path ours) {
        String[] command = Arrays.copyOf(args, args.length + 1);
        command[args.length] = theirs.toString();
        Qemu.Output q = Qemu.runImg(dir, command);
        command[args.length] = ours.toString();
        Run.Result i = imago(command);
        String what = String.join(" ", args);
        assertEquals(q.out().replace(theirs.toString(), ours.toString()), i.out(), what);
        assertEquals(q.err().replace("qemu-img: ", "imago: ").replace(theirs.toString(), ours.toString()), i.err(),
                what);
        assertEquals(q.status(), i.status(), what);
    }

    /**
     * The files one raw source became through both tools.
     *
     * @param ours imago's
     * @param theirs qemu-img's
     */
    record Converted(Path ours, Path theirs) {
    }

    /** What a test compares of an image file: its bytes, with what differs between two tools' files by nature zeroed. */
    @FunctionalInterface
    interface Mask {
        /** The bytes of {@code file} as compared. */
        byte[] masked(Path file) throws IOException;
    }

    /**
     * Converts the raw file {@code src} to {@code format} with {@code -o options} through imago ({@code ours.EXT})
     * and through qemu-img ({@code theirs.EXT}) in {@code dir}, and asserts that the two files are as long and equal
     * once {@code mask} has zeroed what differs by nature ({@code differ} says what), and that
     * {@code qemu-img compare} finds src's content in imago's.
     */
    static Converted convertAsQemuImg(Path dir, Path src, String format, String extension, String options, Mask mask,
            String differ) throws IOException {
        Path ours = dir.resolve("ours." + extension);
        Path theirs = dir.resolve("theirs." + extension);
        imago("convert", "-f", "raw", "-O", format, "-o", options, src.toString(), ours.toString()).ok();
        Qemu.ok(dir, Qemu.img(), "convert", "-f", "raw", "-O", format, "-o", options, src, theirs);
        assertEquals(Files.size(theirs), Files.size(ours), "file length");
        assertArrayEquals(mask.masked(theirs), mask.masked(ours), differ);
        Qemu.Output cmp = Qemu.run(dir, Qemu.img(), "compare", "-f", "raw", "-F", format, src, ours);
        assertEquals(0, cmp.status(), () -> cmp.out() + cmp.err());
        return new Converted(ours, theirs);
    }

    /**
     * {@code info}, {@code map} and {@code check} of {@code image}, human and JSON, print what qemu-img prints, and
     * imago converts it back to the bytes of the raw file {@code src}.
     */
    static void assertReportsAndConvertsBack(Path dir, Path image, String format, Path src) throws IOException {
        for (String[] args : new String[][] {{"info", "--output=json"}, {"info"}, {"map", "--output=json"}, {"map"},
                {"check"}, {"check", "--output=json"}}) {
            assertAnswersAsQemuImg(dir, args, image, image);
        }
        Path back = dir.resolve("back.raw");
        imago("convert", "-f", format, "-O", "raw", image.toString(), back.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(back));
    }

    /**
     * Runs each of {@code commands} as {@code qemu-io -f format -c command theirs} and
     * {@code imago io -f format -c command ours}: the same exit status, output (but for timings) and errors.
     */
    static void assertIoAsQemuIo(Path dir, String format, Path theirs, Path ours, List<String> commands) {
        for (String c : commands) {
            Qemu.Output q = Qemu.run(dir, Qemu.io(), "-f", format, "-c", c, theirs);
            Run.Result m = imago("io", "-f", format, "-c", c, ours.toString());
            assertEquals(q.status(), m.status(), c);
            assertEquals(TIMING.matcher(q.out()).replaceAll("$1"), TIMING.matcher(m.out()).replaceAll("$1"), c);
            assertEquals(q.err(), m.err(), c);
        }
    }
}
