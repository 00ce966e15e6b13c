package imago.cli;

import static imago.cli.FormatCliDifferential.assertIoAsQemuIo;
import static imago.cli.FormatCliDifferential.randomRaw;
import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The qed and qcow (version 1) formats through the command, against qemu-img on the same files: {@code create} and
 * {@code convert -O} write qemu-img's files byte for byte, {@code info} and {@code map} print what qemu-img prints,
 * {@code check} (qed: counts, repairs, exit status; qcow: none) and {@code resize} (qed grows only; qcow none) answer
 * as qemu-img does, and zero writes through {@code imago io} leave qemu-io's file.
 */
class QedQcowCliDifferentialTest {
    @TempDir
    Path dir;

    private void sameOutput(String what, Qemu.Output q, Run.Result i) {
        assertEquals(q.status(), i.status(), () -> what + ": " + q.err() + i.err());
        assertEquals(q.out(), i.out(), what);
        assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err(), what);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qed:", "qed:cluster_size=4096,table_size=2", "qed:table_size=16", "qcow:"})
    void convertWritesWhatQemuImgWrites(String spec) throws IOException {
        String format = spec.substring(0, spec.indexOf(':'));
        String options = spec.substring(spec.indexOf(':') + 1);
        Path src = randomRaw(dir, (29L << 20) + 3 * 512, 20);
        Path ours = dir.resolve("ours." + format);
        Path theirs = dir.resolve("theirs." + format);
        List<String> args = new ArrayList<>(List.of("convert", "-f", "raw", "-O", format));
        if (!options.isEmpty()) {
            args.addAll(List.of("-o", options));
        }
        imago(concat(args, src.toString(), ours.toString())).ok();
        List<Object> q = new ArrayList<>(List.of(Qemu.img()));
        q.addAll(args);
        q.addAll(List.of(src, theirs));
        Qemu.ok(dir, q.toArray());
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), "the files differ");
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", "--output=json", ours),
                imago("info", "--output=json", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", ours), imago("info", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, Qemu.img(), "map", "--output=json", ours),
                imago("map", "--output=json", ours.toString()).ok().out());
        Path back = dir.resolve("back.raw");
        imago("convert", "-O", "raw", ours.toString(), back.toString()).ok();
        assertEquals(0, Qemu.compare(src, "raw", back, "raw").status());
    }

    /**
     * {@code convert -o backing_file=,backing_fmt=}: the target is over a backing file, so the source's zeroes are
     * written as zero writes (qed: zero clusters; qcow: clusters of zeroes; qcow2: zero clusters) instead of being
     * skipped, and the file is qemu-img's byte for byte; without {@code backing_fmt} both refuse.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qed", "qcow", "qcow2"})
    void convertOverABackingFileWritesWhatQemuImgWrites(String format) throws IOException {
        Path base = dir.resolve("base.raw");
        Path src = randomRaw(dir, 9L << 20, 20);
        Files.copy(src, base);
        try (RandomAccessFile f = new RandomAccessFile(src.toFile(), "rw")) {
            byte[] change = new byte[200_000];
            new Random(4).nextBytes(change);
            f.seek(3L << 20);
            f.write(change);
            f.seek(5L << 20);
            f.write(new byte[300_000]); // zeroes over the base's data
        }
        String options = "backing_file=base.raw,backing_fmt=raw";
        Path ours = dir.resolve("ours." + format);
        Path theirs = dir.resolve("theirs." + format);
        imago("convert", "-O", format, "-o", options, src.toString(), ours.toString()).ok();
        Qemu.ok(dir, Qemu.img(), "convert", "-O", format, "-o", options, src, theirs);
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), "the files differ");
        assertEquals(0, Qemu.compare(src, "raw", ours, format).status());
        Path bare = dir.resolve("bare." + format);
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "convert", "-O", format, "-o", "backing_file=base.raw", src, bare);
        Run.Result i = imago("convert", "-O", format, "-o", "backing_file=base.raw", src.toString(), bare.toString());
        sameOutput("without backing_fmt", q, i);
    }

    private static String[] concat(List<String> head, String... tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(List.of(tail));
        return all.toArray(String[]::new);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qed:1000:", "qed:24M:cluster_size=4096,table_size=8", "qed:5M:backing", "qcow:1000:",
            "qcow:100M:", "qcow:5M:backing"})
    void createPrintsAndMakesWhatQemuImgMakes(String spec) throws IOException {
        String[] s = spec.split(":", -1);
        String format = s[0];
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", "base.raw", "5M");
        List<String> args = new ArrayList<>(List.of("create", "-f", format));
        if (s[2].equals("backing")) {
            args.addAll(List.of("-b", "base.raw", "-F", "raw"));
        } else if (!s[2].isEmpty()) {
            args.addAll(List.of("-o", s[2]));
        }
        Path ours = dir.resolve("ours." + format);
        Path theirs = dir.resolve("theirs." + format);
        List<String> sized = s[2].equals("backing") ? List.of() : List.of(s[1]);
        List<String> mine = new ArrayList<>(args);
        mine.add(ours.toString());
        mine.addAll(sized);
        String line = imago(mine.toArray(String[]::new)).ok().out();
        List<Object> q = new ArrayList<>(List.of(Qemu.img()));
        q.addAll(args);
        q.add(theirs);
        q.addAll(sized);
        assertEquals(Qemu.ok(dir, q.toArray()).replace(theirs.toString(), ours.toString()), line);
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
        assertEquals(Qemu.ok(dir, Qemu.img(), "info", ours), imago("info", ours.toString()).ok().out());
    }

    /** A qed image with leaks and corruptions: check, check -r leaks, check -r all, text and JSON, as qemu-img. */
    @Test
    void qedCheckAndRepairAnswerAsQemuImg() throws IOException {
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "cluster_size=4096,table_size=2", "img.qed", "8M");
        Qemu.ok(dir, Qemu.io(), "-f", "qed", "-c", "write -P 1 0 12k", "-c", "write -P 2 5M 8k", "img.qed");
        Path img = dir.resolve("img.qed");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(40);
            long l1 = Long.reverseBytes(f.readLong());
            f.seek(l1);
            long l2 = Long.reverseBytes(f.readLong());
            f.seek(l2 + 8);
            f.writeLong(Long.reverseBytes(1L << 40));
            f.setLength(f.length() + 2 * 4096);
        }
        for (String[] args : new String[][] {{"check"}, {"check", "--output=json"}, {"check", "-r", "leaks"},
                {"check", "-r", "all", "--output=json"}, {"check", "-r", "all"}}) {
            Path ours = Files.copy(img, dir.resolve("ours.qed"), StandardCopyOption.REPLACE_EXISTING);
            Path theirs = Files.copy(img, dir.resolve("theirs.qed"), StandardCopyOption.REPLACE_EXISTING);
            List<Object> q = new ArrayList<>(List.of(Qemu.img()));
            q.addAll(List.of(args));
            q.add(theirs.getFileName());
            Qemu.Output qo = Qemu.run(dir, q.toArray());
            Run.Result io = imago(concat(List.of(args), ours.toString()));
            sameOutput(String.join(" ", args), new Qemu.Output(qo.status(), qo.out().replace("theirs.qed",
                    ours.toString()), qo.err()), io);
            assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), String.join(" ", args));
        }
    }

    @Test
    void resizeAndCheckAreAnsweredAsQemuImgAnswers() throws IOException {
        for (String format : List.of("qed", "qcow")) {
            Path ours = dir.resolve("r-ours." + format);
            Path theirs = dir.resolve("r-theirs." + format);
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", format, ours, "8M");
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", format, theirs, "8M");
            // each case: the options, then the file, then the size (none for check)
            for (String[] args : new String[][] {{"resize", "|+1M"}, {"resize", "--shrink", "|1M"},
                    {"resize", "|+1000"}, {"check", "|"}, {"resize", "--preallocation=full", "|+1M"}}) {
                List<String> head = new ArrayList<>(List.of(args).subList(0, args.length - 1));
                String size = args[args.length - 1].substring(1);
                List<Object> q = new ArrayList<>(List.of(Qemu.img()));
                q.addAll(head);
                q.add(theirs);
                List<String> mine = new ArrayList<>(head);
                mine.add(ours.toString());
                if (!size.isEmpty()) {
                    q.add(size);
                    mine.add(size);
                }
                Qemu.Output qo = Qemu.run(dir, q.toArray());
                Run.Result io = imago(mine.toArray(String[]::new));
                sameOutput(format + " " + String.join(" ", args), new Qemu.Output(qo.status(), qo.out(),
                        qo.err().replace(theirs.toString(), ours.toString())), io);
            }
            assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), format);
        }
    }

    /** Zero writes (with and without -u, -n) through imago io leave qemu-io's qed file, with qemu-io's output. */
    @Test
    void qedZeroWritesActAsQemuIos() throws IOException {
        Path ours = dir.resolve("zero-imago.qed");
        Path theirs = dir.resolve("zero-qemu.qed");
        for (Path p : List.of(ours, theirs)) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qed", "-o", "cluster_size=4096,table_size=2", p, "1M");
        }
        List<String> commands = List.of("write -P 1 0 64k", "write -z 0 8k", "write -z -u 8k 8k", "write -z -n 20k 4k",
                "write -z -n 21k 1k", "write -z 100k 10k", "write -z -u 200k 64k", "write -z 1020k 4k");
        assertIoAsQemuIo(dir, "qed", theirs, ours, commands);
        assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours));
    }
}
