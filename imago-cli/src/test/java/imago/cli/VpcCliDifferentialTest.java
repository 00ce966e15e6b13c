package imago.cli;

import static imago.cli.FormatCliDifferential.assertIoAsQemuIo;
import static imago.cli.FormatCliDifferential.convertAsQemuImg;
import static imago.cli.FormatCliDifferential.randomRaw;
import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The vpc (VHD) format through the command, against qemu-img on the same files: {@code convert -O vpc} writes
 * the file qemu-img writes (but for the time stamp, unique id and checksum of the footers), {@code info} prints
 * what qemu-img prints, and qemu-img compare, map and libvhdi's vhdiinfo accept the result.
 */
class VpcCliDifferentialTest {
    @TempDir
    Path dir;

    /** The file with the footers' time stamp, checksum and unique id zeroed (they differ by nature). */
    private static byte[] masked(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        for (int at : new int[] {0, b.length - 512}) {
            if (at >= 0 && new String(b, at, 8, StandardCharsets.US_ASCII).equals("conectix")) {
                Arrays.fill(b, at + 24, at + 28, (byte) 0);
                Arrays.fill(b, at + 64, at + 84, (byte) 0);
            }
        }
        return b;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"subformat=dynamic", "subformat=dynamic,force_size=on", "subformat=fixed",
            "subformat=fixed,force_size=on"})
    void convertWritesWhatQemuImgWrites(String options) throws IOException {
        Path qemuImg = Qemu.img();
        Path src = randomRaw(dir, (37L << 20) + 3 * 512, 25);
        FormatCliDifferential.Converted converted = convertAsQemuImg(dir, src, "vpc", "vhd", options,
                VpcCliDifferentialTest::masked, "the files differ beyond time stamps and ids");
        Path ours = converted.ours();
        Path theirs = converted.theirs();
        assertEquals(Qemu.ok(dir, qemuImg, "map", "-f", "vpc", "--output=json", theirs),
                Qemu.ok(dir, qemuImg, "map", "-f", "vpc", "--output=json", ours));
        Qemu.Output vhdi = Qemu.run(dir, "vhdiinfo", ours);
        assertEquals(0, vhdi.status(), vhdi.out() + vhdi.err());

        // info, text and JSON, as qemu-img prints it (a fixed disk is named with -f vpc: it probes as raw)
        assertEquals(Qemu.ok(dir, qemuImg, "info", "-f", "vpc", "--output=json", ours),
                imago("info", "-f", "vpc", "--output=json", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, qemuImg, "info", "-f", "vpc", ours), imago("info", "-f", "vpc", ours.toString()).ok().out());
        assertEquals(Qemu.ok(dir, qemuImg, "map", "-f", "vpc", "--output=json", ours),
                imago("map", "-f", "vpc", "--output=json", ours.toString()).ok().out());

        // and back: both tools read the same raw bytes out of it
        Path back = dir.resolve("back.raw");
        imago("convert", "-f", "vpc", "-O", "raw", ours.toString(), back.toString()).ok();
        Qemu.Output same = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw", src, back);
        assertEquals(0, same.status(), same.out() + same.err());
    }

    /** With -W (out-of-order writes) the blocks may be laid out in any order, but the contents are the same. */
    @Test
    void outOfOrderConversionHasTheSameContents() throws IOException {
        Path qemuImg = Qemu.img();
        Path src = randomRaw(dir, (29L << 20) + 512, 25);
        Path out = dir.resolve("w.vhd");
        imago("convert", "-W", "-f", "raw", "-O", "vpc", src.toString(), out.toString()).ok();
        Qemu.Output cmp = Qemu.run(dir, qemuImg, "compare", "-f", "raw", "-F", "vpc", src, out);
        assertEquals(0, cmp.status(), cmp.out() + cmp.err());
    }

    /** What vpc cannot do is refused as qemu-img refuses it: no check (exit 63), no resize, no snapshots. */
    @Test
    void checkResizeAndSnapshotsAreRefusedAsQemuImgRefusesThem() {
        String img = dir.resolve("d.vhd").toString();
        imago("create", "-q", "-f", "vpc", img, "8M").ok();
        for (String[] args : new String[][] {{"check", img}, {"resize", img, "+1M"}, {"snapshot", "-l", img}}) {
            Qemu.Output q = Qemu.runImg(dir, args);
            Run.Result i = imago(args);
            assertEquals(q.status(), i.status(), () -> String.join(" ", args) + ": " + q.err() + i.err());
            assertEquals(q.err().replace("qemu-img: ", "imago: "), i.err(), String.join(" ", args));
            assertEquals(q.out(), i.out(), String.join(" ", args));
        }
    }

    /**
     * Zero writes act as qemu-io's on vpc, whose QEMU driver has no zero writes: {@code -n} (no fallback) always
     * fails with "Operation not supported", and the others succeed with the same output and leave the same
     * contents. The layout differs on purpose: QEMU's fallback writes buffers of zeroes, allocating blocks of a
     * dynamic disk, where imago leaves unallocated blocks alone and unmaps whole ones with {@code -u} (the file
     * stays smaller), and lets the file system zero a fixed disk's range.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"subformat=dynamic", "subformat=fixed"})
    void zeroWriteFlagsActAsQemuIos(String options) throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("zero-imago.vhd");
        Path theirs = dir.resolve("zero-qemu.vhd");
        for (Path p : List.of(ours, theirs)) {
            Qemu.ok(dir, qemuImg, "create", "-q", "-f", "vpc", "-o", options + ",force_size=on", p, "8M");
        }
        List<String> commands = List.of("write -P 1 0 256k", "write -z 0 64k", "write -z -u 64k 64k",
                "write -z -n 128k 4k", "write -z -n 4M 4k", "write -z -u -n 2M 2M", "write -z 5M 10k",
                "write -z -u 0 2M", "write -z -u 6M 2M");
        assertIoAsQemuIo(dir, "vpc", theirs, ours, commands);
        Qemu.Output compare = Qemu.run(dir, qemuImg, "compare", "-f", "vpc", "-F", "vpc", theirs, ours);
        assertEquals(0, compare.status(), compare.out() + compare.err());
        assertTrue(Files.size(ours) <= Files.size(theirs), "imago allocates no more for zeroes than QEMU");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"1000", "24M", "100M", "127G"})
    void createPrintsAndMakesWhatQemuImgMakes(String size) throws IOException {
        Path qemuImg = Qemu.img();
        Path ours = dir.resolve("ours.vhd");
        Path theirs = dir.resolve("theirs.vhd");
        String line = imago("create", "-f", "vpc", ours.toString(), size).ok().out();
        assertEquals(Qemu.ok(dir, qemuImg, "create", "-f", "vpc", theirs, size).replace(theirs.toString(),
                ours.toString()), line);
        assertArrayEquals(masked(theirs), masked(ours));
        assertEquals(Qemu.ok(dir, qemuImg, "info", ours), imago("info", ours.toString()).ok().out());
        assertTrue(imago("info", ours.toString()).ok().out().contains("file format: vpc"));
    }
}
