package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code map}, {@code compare}, {@code snapshot -l} and {@code info} against qemu-img 7.2 on the same files,
 * raw and qcow2, all made by qemu-img and qemu-io. Skipped without qemu, failed without it under
 * IMAGO_REQUIRE_QEMU=1.
 */
class QemuImgToolsDifferentialTest {
    @TempDir
    Path dir;

    private Path qemuImg;
    private Path qemuIo;

    private void needQemu() {
        qemuImg = Qemu.img();
        qemuIo = Qemu.io();
    }

    private String qemuImg(Object... args) {
        List<Object> cmd = new ArrayList<>(List.of(qemuImg));
        cmd.addAll(List.of(args));
        Qemu.Output o = Qemu.run(dir, cmd.toArray());
        assertEquals(0, o.status(), () -> cmd + ": " + o.out() + o.err());
        return o.out();
    }

    private void qemuIo(String file, String format, String... commands) {
        List<Object> cmd = new ArrayList<>(List.of(qemuIo, "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(file);
        Qemu.Output o = Qemu.run(dir, cmd.toArray());
        assertEquals(0, o.status(), () -> cmd + ": " + o.out() + o.err());
    }

    /** A file made by qemu-img create -f FORMAT and written by qemu-io. */
    private String image(String name, String format, String size, String... commands) {
        String f = dir.resolve(name).toString();
        qemuImg("create", "-q", "-f", format, f, size);
        if (commands.length > 0) {
            qemuIo(f, format, commands);
        }
        return f;
    }

    private static void poke(String file, long offset, int value) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
            raf.seek(offset);
            raf.write(value);
        }
    }

    /** Same exit status, standard output and (for success) standard error as qemu-img. */
    private void same(String... args) {
        List<Object> cmd = new ArrayList<>(List.of(qemuImg));
        cmd.addAll(List.of(args));
        Qemu.Output theirs = Qemu.run(dir, cmd.toArray());
        Run.Result ours = imago(args);
        String what = String.join(" ", args);
        assertEquals(theirs.status(), ours.status(), () -> what + "\nqemu: " + theirs.err() + "\nimago: " + ours.err());
        assertEquals(theirs.out(), ours.out(), what);
        if (theirs.status() == 0) {
            assertEquals(theirs.err(), ours.err(), what);
        }
    }

    @Test
    void mapOfRawFilesWithHolesAndData() {
        needQemu();
        // qemu 7.2 reports the first 4 KiB of a raw file it created as data
        String f = image("x.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k", "write -z 8M 64k",
                "write -P 3 15M 1M");
        for (String output : List.of("json", "human")) {
            same("map", "--output=" + output, f);
            same("map", "-f", "raw", "--output=" + output, "--start-offset=1000", "--max-length=2M", f);
            same("map", "--output=" + output, "--start-offset=20M", f);
            same("map", "--output=" + output, "-s", "4k", "-l", "0", f);
            same("map", "--output=" + output, "-s", "1M", "-l", "1", f);
        }
        String empty = image("empty.img", "raw", "0");
        same("map", "--output=json", empty);
        same("map", empty);
    }

    @Test
    void mapOfQcow2ImagesAndChains() {
        needQemu();
        String base = image("base.qcow2", "qcow2", "64M", "write -P 1 0 2M", "write -P 2 10M 64k", "write -z 20M 1M");
        String top = dir.resolve("top.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
        qemuIo(top, "qcow2", "write -P 3 1M 64k", "write -z 10M 64k", "write -P 4 63M 1M");
        for (String f : List.of(base, top)) {
            same("map", "--output=json", f);
            same("map", f);
            same("map", "--output=json", "--start-offset=1M", "--max-length=10M", f);
        }
        // extended L2: unwritten subclusters of an allocated cluster keep their host offset in the
        // JSON map when no backing layer answers for them
        String ext = dir.resolve("ext.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", ext, "4M");
        qemuIo(ext, "qcow2", "write -P 1 0 4k", "write -P 2 40k 4k", "write -P 3 64k 64k", "write -P 4 132k 2k",
                "write -z 136k 4k", "write -P 5 1M 8k");
        String extTop = dir.resolve("ext-top.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "-b", ext, "-F", "qcow2",
                extTop, "6M");
        qemuIo(extTop, "qcow2", "write -P 6 8k 4k", "write -P 7 1032k 4k", "write -P 8 5M 4k");
        for (String f : List.of(ext, extTop)) {
            same("map", "--output=json", f);
            same("map", f);
            same("map", "--output=json", "--start-offset=6k", "--max-length=1M", f);
        }
        String compressed = dir.resolve("c.qcow2").toString();
        qemuImg("convert", "-c", "-O", "qcow2", base, compressed);
        same("map", "--output=json", compressed);
        // the human form refuses compressed data, as qemu-img does, in its words (no file named)
        same("map", compressed);
        assertEquals("imago: File contains external, encrypted or compressed clusters.",
                imago("map", compressed).failsWithOneLine());
    }

    @Test
    void compareExitCodesAndMessages() throws IOException {
        needQemu();
        String a = image("a.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k");
        String same = image("same.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k");
        String differs = image("differs.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k");
        poke(differs, (1 << 20) + 700, 9);
        String extra = image("extra.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k", "write -P 5 9M 1");
        String zeroes = image("zeroes.img", "raw", "16M", "write -P 1 1M 64k", "write -P 2 4M 8k",
                "write -P 0 12M 1M");
        String longer = image("longer.img", "raw", "20M", "write -P 1 1M 64k", "write -P 2 4M 8k");
        String longerData = image("longer-data.img", "raw", "20M", "write -P 1 1M 64k", "write -P 2 4M 8k",
                "write -P 3 18M 1");
        String shorter = image("shorter.img", "raw", "3M", "write -P 1 1M 64k");
        List<String> all = List.of(a, same, differs, extra, zeroes, longer, longerData, shorter);
        for (String x : all) {
            for (String y : all) {
                same("compare", x, y);
                same("compare", "-s", x, y);
                same("compare", "-q", x, y);
            }
        }
        same("compare", "-f", "raw", "-F", "raw", a, same);
        same("compare", "-p", a, same);
        same("compare", "-p", a, extra);
        Qemu.Output theirs = Qemu.run(dir, qemuImg, "compare", a, dir.resolve("missing.img"));
        assertEquals(2, theirs.status());
        assertEquals(2, imago("compare", a, dir.resolve("missing.img").toString()).status());
    }

    @Test
    void compareQcow2AgainstRaw() {
        needQemu();
        String q = image("q.qcow2", "qcow2", "16M", "write -P 1 1M 64k", "write -z 2M 64k", "write -P 2 4M 8k");
        String r = dir.resolve("r.img").toString();
        qemuImg("convert", "-O", "raw", q, r);
        String c = dir.resolve("c.qcow2").toString();
        qemuImg("convert", "-c", "-O", "qcow2", q, c);
        String other = image("o.qcow2", "qcow2", "16M", "write -P 1 1M 64k", "write -P 3 4198400 512");
        for (String x : List.of(q, r, c, other)) {
            for (String y : List.of(q, r, c, other)) {
                same("compare", x, y);
                same("compare", "-s", x, y);
            }
        }
    }

    @Test
    void snapshotListAndInfoOfAQcow2WithSnapshots() {
        needQemu();
        String f = image("s.qcow2", "qcow2", "64M", "write -P 9 0 1M");
        qemuImg("snapshot", "-c", "first", f);
        qemuIo(f, "qcow2", "write -P 8 0 64k");
        qemuImg("snapshot", "-c", "second snapshot with a long name", f);
        same("snapshot", "-l", f);
        assertTrue(imago("snapshot", "-l", f).out().startsWith("Snapshot list:\nID        TAG "));
        same("info", f);
        same("info", "--output=json", f);
        same("info", "--backing-chain", "--output=json", f);
        same("map", "--output=json", f);
    }

    @Test
    void snapshotListOfImagesWithoutSnapshots() {
        needQemu();
        same("snapshot", "-l", image("x.img", "raw", "1M"));
        same("snapshot", "-l", image("y.qcow2", "qcow2", "1M"));
    }

    @Test
    void infoOfQcow2ImagesEqualsQemuImgs() {
        needQemu();
        String base = image("base.qcow2", "qcow2", "64M", "write -P 1 0 2M");
        String top = dir.resolve("top.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
        String lazy = dir.resolve("lazy.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096,refcount_bits=8", lazy,
                "1G");
        String compat = dir.resolve("v2.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", compat, "10M");
        String bitmaps = dir.resolve("bitmaps.qcow2").toString();
        qemuImg("create", "-q", "-f", "qcow2", bitmaps, "64M");
        qemuImg("bitmap", "--add", bitmaps, "b0");
        qemuImg("bitmap", "--add", "-g", "128k", "--disable", bitmaps, "second");
        qemuImg("bitmap", "--add", "-g", "1M", bitmaps, "third");
        for (String f : List.of(base, top, lazy, compat, bitmaps)) {
            same("info", f);
            same("info", "--output=json", f);
            same("info", "--backing-chain", f);
            same("info", "--backing-chain", "--output=json", f);
        }
    }

    @Test
    void createPrintsQemuImgsFormattingLine() {
        needQemu();
        String base = image("fl-base.qcow2", "qcow2", "1M");
        String f = dir.resolve("fl.qcow2").toString();
        String data = dir.resolve("fl.data").toString();
        same("create", "-f", "qcow2", f, "1M");
        same("create", "-f", "qcow2", "-o", "compat=0.10", f, "3G");
        same("create", "-f", "qcow2", "-o", "cluster_size=128k,extended_l2=on,compression_type=zstd,lazy_refcounts=on,"
                + "refcount_bits=8,compat=1.1,data_file=" + data, "-b", base, "-F", "qcow2", f, "1M");
        same("create", "-f", "qcow2", "-o", "data_file=" + data + ",data_file_raw=on", f, "1M");
        same("create", "-f", "qcow2", "-o", "preallocation=off", f, "1M");
        same("create", "-f", "raw", f, "1M");
    }

    @Test
    void benchOutputHasQemuImgsShape() {
        needQemu();
        String f = image("x.img", "raw", "1M");
        for (String[] args : List.of(new String[] {"-c", "1000"}, new String[] {"-c", "100", "-d", "4", "-s", "1k",
            "-S", "8k", "-o", "4k", "-w", "--pattern=0x55"}, new String[] {"-s", "0", "-c", "10"},
            new String[] {"-w", "-c", "500", "-d", "8", "--flush-interval=16"},
            new String[] {"-w", "-c", "500", "-d", "8", "--flush-interval=16", "--no-drain"})) {
            List<Object> cmd = new ArrayList<>(List.of(qemuImg, "bench", "-f", "raw"));
            cmd.addAll(List.of(args));
            cmd.add(f);
            Qemu.Output theirs = Qemu.run(dir, cmd.toArray());
            List<String> mine = new ArrayList<>(List.of("bench", "-f", "raw"));
            mine.addAll(List.of(args));
            mine.add(f);
            Run.Result ours = imago(mine.toArray(String[]::new)).ok();
            assertEquals(0, theirs.status(), theirs.err());
            String timing = "(?m)^Run completed in \\d+\\.\\d{3} seconds\\.$";
            assertEquals(theirs.out().replaceAll(timing, "Run completed."), ours.out().replaceAll(timing,
                    "Run completed."));
        }
        Qemu.Output theirs = Qemu.run(dir, qemuImg, "bench", "-f", "raw", "-c", "10", "-o", "2M", f);
        Run.Result ours = imago("bench", "-f", "raw", "-c", "10", "-o", "2M", f);
        assertEquals(theirs.status(), ours.status());
        assertEquals(theirs.out(), ours.out());
    }

    /** Random writes, zero writes and discards by qemu-io (seeded), then map and compare like qemu-img. */
    @Test
    void mapAndCompareOfRandomlyWrittenImages() {
        needQemu();
        java.util.Random random = new java.util.Random(20261121);
        for (int round = 0; round < 4; round++) {
            String format = round % 2 == 0 ? "raw" : "qcow2";
            long size = 32L << 20;
            List<String> commands = new ArrayList<>();
            for (int i = 0; i < 24; i++) {
                long unit = random.nextBoolean() ? 4096 : 65536;
                long offset = random.nextLong(size / unit) * unit;
                long length = Math.min(size - offset, (1 + random.nextLong(8)) * unit);
                commands.add(switch (random.nextInt(4)) {
                    case 0 -> "write -z " + offset + " " + length;
                    case 1 -> "discard " + offset + " " + length;
                    default -> "write -P " + random.nextInt(256) + " " + offset + " " + length;
                });
            }
            String a = image("a" + round + "." + format, format, Long.toString(size),
                    commands.toArray(String[]::new));
            String b = image("b" + round + "." + format, format, Long.toString(size),
                    commands.subList(0, commands.size() - 1).toArray(String[]::new));
            for (String f : List.of(a, b)) {
                same("map", "--output=json", f);
                same("map", f);
            }
            same("compare", a, b);
            same("compare", b, a);
            same("compare", "-s", a, b);
        }
    }
}
