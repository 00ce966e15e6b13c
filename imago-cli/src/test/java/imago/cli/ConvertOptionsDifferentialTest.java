package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code imago convert}'s qemu-img 7.2 options against {@code qemu-img convert} on the same command lines: several
 * sources, {@code -n}, {@code --target-is-zero}, {@code --target-image-opts}, {@code -B/-F}, {@code -l}, {@code -m},
 * {@code -W}, {@code -r}, {@code -C}, {@code --salvage}, {@code --bitmaps}, {@code -o help}, the file options; the
 * same output, messages (program name aside), exit status, and target (contents, map, check, and with
 * {@code --bitmaps} the bitmaps and their dirty bits).
 */
class ConvertOptionsDifferentialTest {
    @TempDir
    static Path dir;

    private static CliDifferential both;

    /**
     * base.qcow2 (2 MiB of data) under top.qcow2 (3 MiB: data, zero clusters, a cluster of zero data, data past the
     * base's end); a.qcow2 with snapshot s1 and a later write; b.raw (3000 bytes); bad.qcow2 with a compressed
     * cluster that cannot be inflated; bitmaps.qcow2 with bitmaps b0 (enabled, 64k, two writes), b1 (disabled, 512
     * bytes, b0 merged in) and b2 (128k, clean), and inuse.qcow2, the same left in use by a killed writer.
     */
    @BeforeAll
    static void sources() throws Exception {
        Path img = Qemu.img();
        Path io = Qemu.io();
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "base.qcow2", "2M");
        Qemu.ok(dir, io, "-c", "write -P 1 0 2M", "base.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "3M");
        Qemu.ok(dir, io, "-c", "write -P 2 256k 64k", "-c", "write -z 512k 64k", "-c", "write -P 0 1M 64k",
                "-c", "write -P 3 2500k 8k", "-c", "write -z 2700k 64k", "top.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "a.qcow2", "1M");
        Qemu.ok(dir, io, "-c", "write -P 1 0 64k", "-c", "write -z 128k 64k", "a.qcow2");
        Qemu.ok(dir, img, "snapshot", "-c", "s1", "a.qcow2");
        Qemu.ok(dir, io, "-c", "write -P 9 0 4k", "a.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "raw", "b.raw", "3000");
        Qemu.ok(dir, io, "-f", "raw", "-c", "write -P 2 0 2k", "b.raw");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "bad.qcow2", "1M");
        Qemu.ok(dir, io, "-c", "write -c -P 7 0 64k", "-c", "write -P 8 64k 64k", "bad.qcow2");
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("bad.qcow2").toFile(), "rw")) {
            f.seek(5 * 65536); // the compressed cluster, after header, L1, refcount table and block, L2
            f.write(new byte[] {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1});
        }
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "bitmaps.qcow2", "4M");
        Qemu.ok(dir, io, "-c", "write -P 1 0 64k", "bitmaps.qcow2");
        Qemu.ok(dir, img, "bitmap", "--add", "bitmaps.qcow2", "b0");
        Qemu.ok(dir, img, "bitmap", "--add", "-g", "512", "--disable", "bitmaps.qcow2", "b1");
        Qemu.ok(dir, io, "-c", "write -P 2 1M 70k", "-c", "write -P 3 3M 4k", "bitmaps.qcow2");
        Qemu.ok(dir, img, "bitmap", "--add", "-g", "128k", "--merge", "b0", "bitmaps.qcow2", "b2");
        Qemu.ok(dir, img, "bitmap", "--clear", "bitmaps.qcow2", "b2");
        Qemu.ok(dir, img, "bitmap", "--merge", "b0", "bitmaps.qcow2", "b1");
        Files.copy(dir.resolve("bitmaps.qcow2"), dir.resolve("inuse.qcow2"));
        Qemu.run(dir, io, "-c", "write 0 64k", "-c", "sigraise 9", "inuse.qcow2"); // killed: bitmaps stay in use
        both = new CliDifferential(dir);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "-O qcow2 top.qcow2 a.qcow2 b.raw a.qcow2 OUT; qcow2", "-c -O qcow2 top.qcow2 b.raw a.qcow2 OUT; qcow2",
        "b.raw b.raw b.raw OUT; raw", "-O qcow2 -S 0 b.raw a.qcow2 b.raw OUT; qcow2",
        "-O vmdk -o subformat=streamOptimized top.qcow2 b.raw a.qcow2 OUT; vmdk",
        "-B base.qcow2 -F qcow2 -O qcow2 top.qcow2 OUT; qcow2", "-B base.qcow2 -F qcow2 -O qcow2 -S 0 top.qcow2 OUT; qcow2",
        "-B base.qcow2 -F qcow2 -O qcow2 -c top.qcow2 OUT; qcow2",
        "-O qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2 OUT; qcow2",
        "-B base.qcow2 -F qcow2 -O qcow2 a.qcow2 OUT; qcow2", "-l s1 a.qcow2 OUT; raw",
        "-l snapshot.id=1 -O qcow2 a.qcow2 OUT; qcow2", "-l snapshot.name=s1,snapshot.id=1 a.qcow2 OUT; raw",
        "-m 1 -O qcow2 top.qcow2 OUT; qcow2", "-m 0x10 -O qcow2 top.qcow2 OUT; qcow2", "-r 16M -O qcow2 top.qcow2 OUT; qcow2",
        "-C -O qcow2 top.qcow2 OUT; qcow2", "-C top.qcow2 OUT; raw", "-C b.raw a.qcow2 top.qcow2 OUT; raw",
        "-S 0 top.qcow2 OUT; raw", "-C bad.qcow2 OUT; raw", "-C -W -m 3 top.qcow2 b.raw OUT; raw", "-W -m 3 top.qcow2 b.raw OUT; raw",
        "--salvage bad.qcow2 OUT; raw", "-q --salvage -O qcow2 bad.qcow2 OUT; qcow2", "bad.qcow2 OUT; raw",
        "-O qcow2 -o nocow=on,extent_size_hint=1M top.qcow2 OUT; qcow2", "--bitmaps -O qcow2 b.raw OUT; qcow2",
        "--bitmaps --skip-broken-bitmaps -O qcow2 a.qcow2 OUT; qcow2"})
    void copiesAsQemuImg(String line, String format) throws Exception {
        both.agree("convert", line, format);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-n -O qcow2 top.qcow2 OUT", "-n --target-is-zero -O qcow2 top.qcow2 OUT",
        "-n -O qcow2 top.qcow2 a.qcow2 b.raw OUT", "-n -f qcow2 -O qcow2 -l s1 a.qcow2 OUT"})
    void writesIntoAnExistingQcow2(String line) throws Exception {
        both.agree("convert", line, "qcow2", out -> {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", out, "4M");
            Qemu.ok(dir, Qemu.io(), "-c", "write -P 9 0 4M", out);
        }, true);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-n top.qcow2 OUT", "-n -S 0 top.qcow2 OUT", "-n -C top.qcow2 OUT", "-n --target-is-zero top.qcow2 OUT",
        "-n --target-image-opts top.qcow2 driver=raw,file.filename=OUT", "-n --target-image-opts top.qcow2 file.filename=OUT",
        "-n -O raw --target-image-opts top.qcow2 driver=raw,file.filename=OUT", "-n top.qcow2 top.qcow2 OUT",
        "-n -o cluster_size=4k top.qcow2 OUT", "-n -B base.qcow2 top.qcow2 OUT"})
    void writesIntoAnExistingRawFile(String line) throws Exception {
        both.agree("convert", line, "raw", out -> {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", out, "4M");
            Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "write -P 9 0 4M", out);
        }, true);
    }

    /** Into a raw file smaller than the source: qemu-img finds -c impossible before it compares the sizes. */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-n -c top.qcow2 OUT", "-n top.qcow2 OUT"})
    void refusesIntoASmallerRawFileAsQemuImg(String line) throws Exception {
        both.agree("convert", line, "raw", out -> Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "raw", out, "1M"),
                true);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"--target-is-zero -O raw a.qcow2 OUT", "-n -O raw a.qcow2 nonexist.raw",
        "-m 0 a.qcow2 OUT", "-m 17 a.qcow2 OUT", "-m x a.qcow2 OUT", "-r x a.qcow2 OUT", "-r -1 a.qcow2 OUT",
        "-C -c -O qcow2 a.qcow2 OUT", "-C -S 4k a.qcow2 OUT", "-C --salvage a.qcow2 OUT", "-l snap a.qcow2 OUT",
        "-l snapshot.name=s1,snapshot.id=2 a.qcow2 OUT", "-l s1 a.qcow2 b.raw OUT", "-l s1 b.raw OUT",
        "-l snapshot.foo=1 a.qcow2 OUT", "-l snapshot.id=1,x=2 a.qcow2 OUT", "--target-image-opts a.qcow2 OUT",
        "-B a.qcow2 b.raw OUT", "-B a.qcow2 -O qcow2 b.raw OUT", "-F qcow2 -O qcow2 b.raw OUT",
        "-B a.qcow2 -F qcow2 -O qcow2 a.qcow2 b.raw OUT", "--bitmaps -O raw a.qcow2 OUT", "--skip-broken-bitmaps a.qcow2 OUT",
        "-c -o preallocation=full -O qcow2 a.qcow2 OUT", "-O qcow2 -o nocow=x a.qcow2 OUT",
        "-O qcow2 -o extent_size_hint=x a.qcow2 OUT", "-O qcow2 -o extent_size_hint=5G a.qcow2 OUT", "''", "a.qcow2",
        "-T foo a.qcow2 OUT", "-O foo a.qcow2 OUT", "-O dmg a.qcow2 OUT", "nope OUT", "-f qcow2 b.raw OUT",
        "-O vdi -o bad=1 a.qcow2 OUT", "-O vhdx -o block_size=x a.qcow2 OUT", "-O qcow2 -o lazy_refcounts=2 a.qcow2 OUT"})
    void refusesAsQemuImg(String line) throws Exception {
        both.agree("convert", line, "raw");
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"-o help", "-O qcow2 -o help", "-O qcow2 -o help a.qcow2 OUT",
        "-O vmdk -o help a.qcow2", "-O vpc -o ? a.qcow2 OUT", "-O raw -o cluster_size=4k,help a.qcow2 OUT",
        "-O foo -o help", "-O vdi -o help a.qcow2 OUT", "-O parallels -o help"})
    void listsTheOptionsAsQemuImg(String line) throws Exception {
        both.agree("convert", line, "raw");
    }

    @Test
    void rateLimitSlowsTheCopy() {
        // 2 MiB of data (one write) and 72 KiB more (three) at 1 MiB/s: the last waits about 1.9 seconds
        long start = System.nanoTime();
        Run.imago("convert", "-r", "1M", "-O", "raw", dir.resolve("top.qcow2").toString(),
                dir.resolve("slow.raw").toString()).ok();
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(millis >= 1500, "took " + millis + " ms");
        assertEquals(0, Qemu.compare(dir.resolve("top.qcow2"), "qcow2", dir.resolve("slow.raw"), "raw").status());
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"--bitmaps -O qcow2 bitmaps.qcow2 OUT; ",
        "--bitmaps -c -O qcow2 -o cluster_size=4k bitmaps.qcow2 OUT; ",
        "--bitmaps --skip-broken-bitmaps -O qcow2 inuse.qcow2 OUT; ", "--bitmaps -O qcow2 inuse.qcow2 OUT; ",
        "--bitmaps -O qcow2 bitmaps.qcow2 a.qcow2 OUT; ", "--bitmaps -O qcow2 -o compat=0.10 bitmaps.qcow2 OUT; ",
        "--bitmaps -n -O qcow2 bitmaps.qcow2 OUT; 4M", "--bitmaps -n -O qcow2 bitmaps.qcow2 OUT; 4M b1",
        "--bitmaps -n -O qcow2 bitmaps.qcow2 OUT; 8M", "--bitmaps -n -O qcow2 --skip-broken-bitmaps inuse.qcow2 OUT; 4M b0"})
    void copiesBitmapsAsQemuImg(String line, String existing) throws Exception {
        // "SIZE [BITMAP]": -n writes into a qcow2 image of that size that already has that bitmap
        CliDifferential.Preparation before = existing == null ? out -> { } : out -> {
            String[] words = existing.split(" ");
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", out, words[0]);
            if (words.length > 1) {
                Qemu.ok(dir, Qemu.img(), "bitmap", "--add", "-g", "4k", out, words[1]);
            }
        };
        CliDifferential.Outcome o = both.agree("convert", line, "qcow2", before, true);
        if (Files.exists(o.qemuOut())) {
            // made, or written into, also when the bitmaps failed: the same bitmaps, with the same dirty bits
            assertEquals(BitmapState.info(o.qemuOut()), BitmapState.info(o.imagoOut()), line);
            assertEquals(BitmapState.dirtyRuns(o.qemuOut()), BitmapState.dirtyRuns(o.imagoOut()), line);
            Qemu.Output checked = Qemu.check(o.imagoOut(), "qcow2");
            assertEquals(0, checked.status(), () -> line + ": " + checked.out() + checked.err());
        }
    }

    @Test
    void qemuNbdExportsTheCopiedBitmaps() throws Exception {
        CliDifferential.Outcome o = both.agree("convert", "--bitmaps -O qcow2 bitmaps.qcow2 OUT", "qcow2");
        for (String name : List.of("b0", "b1", "b2")) {
            String theirs = BitmapState.nbdMap(o.qemuOut(), name);
            assertEquals(theirs, BitmapState.nbdMap(o.imagoOut(), name), name);
            assertTrue(name.equals("b2") != theirs.contains("dirty"), theirs);
        }
    }

    @Test
    void dashSIsMinusLOfOlderQemuImg() {
        // qemu-img 7.2 no longer has -s; imago keeps it as -l
        Run.imago("convert", "-s", "s1", dir.resolve("a.qcow2").toString(), dir.resolve("s.raw").toString()).ok();
        Run.imago("convert", "-l", "s1", dir.resolve("a.qcow2").toString(), dir.resolve("l.raw").toString()).ok();
        assertEquals(0, Qemu.compare(dir.resolve("s.raw"), "raw", dir.resolve("l.raw"), "raw").status());
    }
}
