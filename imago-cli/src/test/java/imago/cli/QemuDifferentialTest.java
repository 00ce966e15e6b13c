package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * imago against qemu-img and qemu-io on the same files: same JSON and text, images each one writes
 * read back correctly with the other. Skipped without qemu, failed without it under IMAGO_REQUIRE_QEMU=1.
 */
class QemuDifferentialTest {
    private static final Pattern TIMING = Pattern.compile("(?m)^(.*, \\d+ ops; ).*$");

    @TempDir
    Path dir;

    @Test
    void infoJsonEqualsQemuImgsAfterCreateAndWrite() {
        Path qemuImg = Qemu.img();
        String x = dir.resolve("x.img").toString();
        imago("create", "-f", "raw", x, "64M").ok();
        imago("io", "-c", "write -P 0xab 1M 64k", x).ok();
        imago("io", "-c", "read -P 0xab 1M 64k", x).ok();
        String ours = imago("info", "--output=json", x).ok().out();
        Qemu.Output theirs = Qemu.run(dir, qemuImg, "info", "--output=json", x);
        assertEquals(0, theirs.status(), theirs.err());
        assertEquals(theirs.out(), ours);
        assertEquals(Qemu.run(dir, qemuImg, "info", x).out(), imago("info", x).ok().out());
        assertEquals(Qemu.run(dir, qemuImg, "info", "--backing-chain", "--output=json", x).out(),
                imago("info", "--backing-chain", "--output=json", x).ok().out());
    }

    /** Sizes are multiples of 512: qemu 7.2 shows a raw file's size rounded up to whole sectors. */
    @Test
    void infoEqualsQemuImgsForOtherSizes() {
        Path qemuImg = Qemu.img();
        for (String size : List.of("0", "1536", "1000k", "1023M", "1.5G", "3T")) {
            String x = dir.resolve("odd.img").toString();
            imago("create", "-q", "-f", "raw", x, size).ok();
            assertEquals(Qemu.run(dir, qemuImg, "info", "--output=json", x).out(),
                    imago("info", "--output=json", x).ok().out(), size);
            assertEquals(Qemu.run(dir, qemuImg, "info", x).out(), imago("info", x).ok().out(), size);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"64M", "1.5G", "1.1k", "0x100", "1b", "100", "0", "1e3", "12x", "-1", "8E", "1.5",
        "1.k", " 5", "+5"})
    void createParsesSizesAndPrintsLikeQemuImg(String size) {
        Path qemuImg = Qemu.img();
        String q = dir.resolve("q.img").toString();
        String ours = dir.resolve("o.img").toString();
        Qemu.Output theirs = Qemu.run(dir, qemuImg, "create", "-f", "raw", q, "--", size);
        Run.Result mine = imago("create", "-f", "raw", ours, "--", size);
        assertEquals(theirs.status(), mine.status(), theirs.err() + " / " + mine.err());
        if (theirs.status() == 0) {
            assertEquals(theirs.out().replace(q, ours), mine.out());
        } else {
            assertEquals(theirs.err().replace(q, ours).replace("qemu-img", "imago"), mine.err());
        }
    }

    /**
     * {@code convert -O qcow2} writes images qemu-img accepts as clean and reads identically, from raw
     * and from cow sources, and they convert back to the same bytes.
     */
    @Test
    void convertToQcow2IsCleanForQemuImgAndRoundTrips() throws IOException {
        Path qemuImg = Qemu.img();
        Path src = dir.resolve("src.img");
        imago("create", "-q", "-f", "raw", src.toString(), "24M").ok();
        Random random = new Random(3);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            byte[] data = new byte[1 << 20];
            random.nextBytes(data);
            for (long at : new long[] {0, 5L << 20, (9L << 20) + 4097, (24L << 20) - data.length}) {
                raf.seek(at);
                raf.write(data);
            }
        }
        Path cow = dir.resolve("src.cow");
        imago("convert", "-f", "raw", "-O", "cow", src.toString(), cow.toString()).ok();
        for (Path from : List.of(src, cow)) {
            Path q = dir.resolve(from.getFileName() + ".qcow2");
            imago("convert", "-O", "qcow2", from.toString(), q.toString()).ok();
            Qemu.Output check = Qemu.run(dir, qemuImg, "check", q);
            assertEquals(0, check.status(), check.out() + check.err());
            assertTrue(check.out().contains("No errors were found on the image."), check.out());
            Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "qcow2", src, q);
            assertEquals(0, compare.status(), compare.out() + compare.err());
            Path back = dir.resolve(from.getFileName() + ".back");
            imago("convert", "-f", "qcow2", "-O", "raw", q.toString(), back.toString()).ok();
            assertTrue(java.util.Arrays.equals(Files.readAllBytes(src), Files.readAllBytes(back)), from.toString());
        }
    }

    /**
     * {@code convert -O qcow2} writes the chunks in guest order, as qemu-img convert does without {@code -W}, so
     * that the new image is laid out as qemu-img lays it out: the same host offsets in {@code qemu-img map} and the
     * same file size. With {@code -W} the chunks go as they are read (the same contents, another layout).
     */
    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536", "cluster_size=512", "cluster_size=2M,lazy_refcounts=on",
        "extended_l2=on"})
    void convertToQcow2LaysOutAsQemuImgConverts(String options) {
        Path qemuImg = Qemu.img();
        Path src = dir.resolve("lsrc.raw");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "raw", src, "64M");
        Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "write -P 1 0 3M", "-c", "write -P 2 10M 1k", "-c",
                "write -P 3 20M 12M", "-c", "write -P 4 40000000 5000", "-c", "write -P 5 60M 4M", src);
        Path theirs = dir.resolve("l-qemu.qcow2");
        Qemu.ok(dir, qemuImg, "convert", "-O", "qcow2", "-o", options, src, theirs);
        Path mine = dir.resolve("l-imago.qcow2");
        imago("convert", "-O", "qcow2", "-o", options, src.toString(), mine.toString()).ok();
        assertEquals(Qemu.ok(dir, qemuImg, "map", "--output=json", theirs),
                Qemu.ok(dir, qemuImg, "map", "--output=json", mine), "host offsets");
        assertEquals(theirs.toFile().length(), mine.toFile().length(), "file size");
        Path unordered = dir.resolve("l-imago-w.qcow2");
        imago("convert", "-W", "-O", "qcow2", "-o", options, src.toString(), unordered.toString()).ok();
        for (Path q : List.of(mine, unordered)) {
            Qemu.Output check = Qemu.run(dir, qemuImg, "check", q);
            assertEquals(0, check.status(), check.out() + check.err());
            Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "qcow2", src, q);
            assertEquals(0, compare.status(), compare.out() + compare.err());
        }
    }

    /**
     * {@code convert -O qcow2 -o extended_l2=on} writes a clean image with the extents (subclusters
     * included) that qemu-img convert gives, host offsets aside.
     */
    @Test
    void convertToExtendedL2MapsAsQemuImgConverts() {
        Path qemuImg = Qemu.img();
        Path src = dir.resolve("xsrc.qcow2");
        Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", src, "8M");
        Qemu.ok(dir, Qemu.io(), "-f", "qcow2", "-c", "write -P 1 0 100k", "-c", "write -P 2 1M 3000",
                "-c", "write -z 2M 64k", "-c", "write -P 3 3000000 700", "-c", "write -P 4 5M 2M", src);
        Path mine = dir.resolve("x-imago.qcow2");
        Path theirs = dir.resolve("x-qemu.qcow2");
        imago("convert", "-O", "qcow2", "-o", "extended_l2=on", src.toString(), mine.toString()).ok();
        Qemu.ok(dir, qemuImg, "convert", "-O", "qcow2", "-o", "extended_l2=on", src, theirs);
        Qemu.Output check = Qemu.run(dir, qemuImg, "check", mine);
        assertEquals(0, check.status(), check.out() + check.err());
        Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", theirs, mine);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        List<String> expected = extents(Qemu.ok(dir, qemuImg, "map", "--output=json", theirs));
        // data, unwritten subclusters of allocated clusters and unallocated clusters alternate
        assertTrue(expected.size() >= 8, expected.toString());
        assertEquals(expected, extents(Qemu.ok(dir, qemuImg, "map", "--output=json", mine)));
    }

    /**
     * {@code imago io}'s {@code write -z} with {@code -u} (may unmap) and {@code -n} (no fallback) prints what
     * qemu-io prints and leaves the allocation qemu-io leaves, whole and partial clusters: on qcow2 v3 zero flags;
     * on v2, which has none, discards where there is no backing file, and {@code -n} always fails.
     */
    @ParameterizedTest
    @ValueSource(strings = {"0.10", "1.1"})
    void zeroWriteFlagsActAsQemuIos(String compat) {
        Path qemuImg = Qemu.img();
        Path qemuIo = Qemu.io();
        Path ours = dir.resolve("zero-imago.qcow2");
        Path theirs = dir.resolve("zero-qemu.qcow2");
        for (Path p : List.of(ours, theirs)) {
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "qcow2", "-o", "compat=" + compat, p, "1M");
        }
        List<String> commands = List.of("write -P 1 0 256k", "write -z 0 64k", "write -z -u 64k 64k",
                "write -z -n 128k 4k", "write -z -n 300k 4k", "write -z -u -n 320k 64k", "write -z 500k 10k",
                "write -z -u 136k 120k", "write -z -u 1000k 24k");
        for (String c : commands) {
            Qemu.Output q = Qemu.run(dir, qemuIo, "-f", "qcow2", "-c", c, theirs);
            Run.Result m = imago("io", "-f", "qcow2", "-c", c, ours.toString());
            assertEquals(q.status(), m.status(), c);
            assertEquals(TIMING.matcher(q.out()).replaceAll("$1"), TIMING.matcher(m.out()).replaceAll("$1"), c);
            assertEquals(q.err(), m.err(), c);
        }
        Qemu.Output check = Qemu.run(dir, qemuImg, "check", ours);
        assertEquals(0, check.status(), check.out() + check.err());
        Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", theirs, ours);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertEquals(extents(Qemu.ok(dir, qemuImg, "map", "--output=json", theirs)),
                extents(Qemu.ok(dir, qemuImg, "map", "--output=json", ours)));
    }

    /** qemu-img map JSON without host offsets, adjacent entries with the same flags merged. */
    private static List<String> extents(String json) {
        java.util.regex.Matcher m = Pattern.compile("\\{ \"start\": (\\d+), \"length\": (\\d+), (\"depth\"[^}]*?)"
                + "(, \"offset\": \\d+)? ?\\}").matcher(json);
        List<String> out = new java.util.ArrayList<>();
        long start = 0;
        long end = 0;
        String flags = null;
        while (m.find()) {
            String f = m.group(3) + (m.group(4) != null ? " host" : "");
            long s = Long.parseLong(m.group(1));
            if (f.equals(flags) && s == end) {
                end += Long.parseLong(m.group(2));
                continue;
            }
            if (flags != null) {
                out.add(start + "+" + (end - start) + " " + flags);
            }
            flags = f;
            start = s;
            end = s + Long.parseLong(m.group(2));
        }
        out.add(start + "+" + (end - start) + " " + flags);
        return out;
    }

    @Test
    void qemuIoReadsWhatImagoWroteAndViceVersa() {
        Path qemuIo = Qemu.io();
        String x = dir.resolve("x.img").toString();
        imago("create", "-q", "-f", "raw", x, "64M").ok();
        imago("io", "-f", "raw", "-c", "write -P 0xab 1M 64k", x).ok();
        Qemu.Output read = Qemu.run(dir, qemuIo, "-f", "raw", "-c", "read -P 0xab 1M 64k", x);
        assertEquals(0, read.status(), read.out() + read.err());
        assertFalse(read.out().contains("Pattern verification failed"), read.out());

        Qemu.Output wrote = Qemu.run(dir, qemuIo, "-f", "raw", "-c", "write -P 0x5a 3M 192k", x);
        assertEquals(0, wrote.status(), wrote.out() + wrote.err());
        Run.Result mine = imago("io", "-f", "raw", "-c", "read -P 0x5a 3M 192k", "-c", "read -P 0 0 1M", x).ok();
        assertFalse(mine.out().contains("Pattern verification failed"), mine.out());
        assertEquals(1, Qemu.run(dir, qemuIo, "-f", "raw", "-c", "read -P 0xab 3M 4k", x).status());
        assertEquals(1, imago("io", "-f", "raw", "-c", "read -P 0xab 3M 4k", x).status());
    }

    @Test
    void ioOutputMatchesQemuIoLineForLine() throws IOException {
        Path qemuIo = Qemu.io();
        Path ours = dir.resolve("ours.img");
        Path theirs = dir.resolve("theirs.img");
        imago("create", "-q", "-f", "raw", ours.toString(), "4M").ok();
        imago("create", "-q", "-f", "raw", theirs.toString(), "4M").ok();
        List<String> commands = List.of("map", "write 0 4k", "write -P 0x11 64k 64k", "map", "alloc 0", "alloc 0 128k",
                "alloc 64k 1M", "length", "read -v 0 40", "read -v 65530 20", "read -P 0x11 64k 4k",
                "read -P 0x12 64k 4k", "read -P 0x11 60k 8k", "read 4M 1", "read 4095k 2k", "write 4095k 2k",
                "discard 4095k 2k", "read -q 0 4k", "write -q 0 4k", "write -z 0 4k", "discard 0 4k", "flush",
                "truncate 8M", "length", "truncate 4M", "read 1.5k 1", "read 0x100 0x10", "read 0 0", "read x 1",
                "read 0", "write -P 300 0 1", "write -P xyz 0 1", "map extra", "foo", "help foo", "write -z -P 1 0 1",
                "write -s nofile 0 1", "truncate x", "read -P 0 -s 4 -l 8 0 8", "write 0 3G", "read 0 16E",
                "read 0 1 -v", "alloc 5M", "r 0 1", "help map", "help length", "write -P 0x41 100 20", "read -v 96 32");
        for (String c : commands) {
            Qemu.Output q = Qemu.run(dir, qemuIo, "-f", "raw", "-c", c, theirs);
            Run.Result m = imago("io", "-f", "raw", "-c", c, ours.toString());
            assertEquals(q.status(), m.status(), c);
            assertEquals(TIMING.matcher(q.out()).replaceAll("$1"), TIMING.matcher(m.out()).replaceAll("$1"), c);
            assertEquals(q.err(), m.err(), c);
        }
        assertEquals(-1, Files.mismatch(ours, theirs));
        // both warn the same way when probing picks raw for a writable open
        Qemu.Output q = Qemu.run(dir, qemuIo, "-c", "read -q 0 1", "theirs.img");
        Run.Result m = imago("io", "-c", "read -q 0 1", ours.toString());
        assertEquals(q.err().replace("theirs.img", ours.toString()), m.err());
    }

    @Test
    void convertedImagesCompareEqualWithQemuImg() throws IOException {
        Path qemuImg = Qemu.img();
        Path src = dir.resolve("src.img");
        imago("create", "-q", "-f", "raw", src.toString(), "100M").ok();
        Random random = new Random(7);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            byte[] data = new byte[1 << 20];
            for (int i = 0; i < 12; i++) {
                random.nextBytes(data);
                raf.seek(Math.max(0, random.nextLong(100L << 20) - data.length) & ~511L);
                raf.write(data, 0, random.nextInt(data.length));
            }
        }
        imago("io", "-f", "raw", "-c", "write -P 0x77 99M 1M", "-c", "write -z 50M 3M", src.toString()).ok();
        Path dst = dir.resolve("dst.img");
        imago("convert", "-O", "raw", src.toString(), dst.toString()).ok();
        Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", src, dst);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertEquals("Images are identical.\n", compare.out());

        // and qemu-img's own conversion of the same source is no smaller than ours
        Path theirs = dir.resolve("theirs.img");
        assertEquals(0, Qemu.run(dir, qemuImg, "convert", "-O", "raw", src, theirs).status());
        String ours = imago("info", "--output=json", dst.toString()).ok().out();
        String qemus = imago("info", "--output=json", theirs.toString()).ok().out();
        assertTrue(actualSize(ours) <= actualSize(qemus) + (64 << 10), ours + qemus);
    }

    private static long actualSize(String json) {
        int i = json.indexOf("\"actual-size\": ");
        return Long.parseLong(json.substring(i + 15, json.indexOf(',', i)));
    }
}
