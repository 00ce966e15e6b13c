package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago bitmap} against {@code qemu-img bitmap}, each on its own copy of the same image: the same output,
 * messages (program name and QEMU's run-dependent node name aside) and exit status; then the same bitmap
 * directory ({@code qemu-img info}'s bitmaps), the same dirty extents of every consistent bitmap, and
 * {@code qemu-img check} clean on imago's copy.
 */
class BitmapDifferentialTest {
    /** The images, made once; each case works on copies of its own. */
    @TempDir
    static Path images;

    @TempDir
    Path dir;

    /**
     * base.qcow2: b0 (enabled, 64k) that recorded two writes, b1 (disabled, 1M) that did not record a later one;
     * inuse.qcow2: the same with both bitmaps left in use by a writer that was killed; other.qcow2: o (5M+3M dirty),
     * small.qcow2 (32M) with s; v2.qcow2 and raw.img, which cannot store bitmaps.
     */
    @BeforeAll
    static void images() throws IOException {
        Path dir = images;
        Path img = Qemu.img();
        Path io = Qemu.io();
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "base.qcow2", "64M");
        Qemu.ok(dir, img, "bitmap", "--add", "base.qcow2", "b0");
        Qemu.ok(dir, io, "-c", "write 1M 64k", "-c", "write 10M 1M", "base.qcow2");
        Qemu.ok(dir, img, "bitmap", "--add", "-g", "1M", "--disable", "base.qcow2", "b1");
        Qemu.ok(dir, io, "-c", "write 30M 4k", "base.qcow2");
        Files.copy(dir.resolve("base.qcow2"), dir.resolve("inuse.qcow2"));
        Qemu.run(dir, io, "-c", "write 0 64k", "-c", "sigraise 9", "inuse.qcow2"); // killed: bitmaps stay in use
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "other.qcow2", "64M");
        Qemu.ok(dir, img, "bitmap", "--add", "-g", "4k", "other.qcow2", "o");
        Qemu.ok(dir, io, "-c", "write 5M 3M", "-c", "write 40M 4k", "other.qcow2");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "small.qcow2", "32M");
        Qemu.ok(dir, img, "bitmap", "--add", "small.qcow2", "s");
        Qemu.ok(dir, img, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "64M");
        Qemu.ok(dir, img, "create", "-q", "-f", "raw", "raw.img", "1M");
    }

    @BeforeEach
    void copies() throws IOException {
        for (String name : List.of("base.qcow2", "inuse.qcow2", "other.qcow2", "small.qcow2", "v2.qcow2", "raw.img")) {
            Files.copy(images.resolve(name), dir.resolve(name));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        // changes, alone and in sequence
        "--add @base b2", "--add -g 512 --disable @base b2", "--add -g 2G @base b2", "--add -g 0 @base b2",
        "--remove @base b0", "--remove --add @base b1", "--clear @base b0", "--enable @base b1", "--disable @base b0",
        "--enable --disable --enable @base b1", "--merge b0 @base b1", "--merge b1 @base b0",
        "--add -g 1M --merge b0 --disable @base n", "--merge o -b other.qcow2 @base b0",
        "--merge o -b other.qcow2 -F qcow2 @base b1", "--remove @inuse b0", "--add -f qcow2 @base b2",
        // refusals, and the operations before them kept
        "@base b0", "-g 64k --remove @base b0", "-F raw --remove @base b0", "-b x --remove @base b0", "--remove @base",
        "--remove @base b0 extra", "--add -g x @base n", "--add -g 4G @base n", "--add -g 100 @base n",
        "--add -g 99999999999999999999 @base n", "--add @base b0", "--add @base ''", "--add --add @base n",
        "--remove --remove @base b0", "--merge s -b small.qcow2 @base b1", "--merge zz @base b1", "--merge b0 @base zz",
        "--clear @inuse b0", "--enable @inuse b1", "--merge b0 @inuse b1", "--merge b0 @base xx --clear",
        "--add @v2 x", "--remove @v2 x", "--add -f raw @raw x", "--clear -f raw @raw x", "--add -f raw @base x"})
    void changesWhatQemuImgChanges(String line) throws IOException {
        String[] words = line.split(" ");
        for (int i = 0; i < words.length; i++) {
            words[i] = words[i].equals("''") ? "" : words[i];
        }
        OnCopies run = OnCopies.run(dir, dir, "bitmap", line, words,
                name -> name.equals("raw") ? "raw.img" : name + ".qcow2",
                word -> word.endsWith(".qcow2") ? dir.resolve(word).toString() : word);
        String target = run.target();
        assertEquals(normalize(run.theirs().err(), "qemu-img: ", "q-"), normalize(run.ours().err(), "imago: ",
                dir.resolve("i-").toString()), line);
        if (target == null || target.equals("raw.img")) {
            return;
        }
        Path qemuCopy = dir.resolve("q-" + target);
        Path imagoCopy = dir.resolve("i-" + target);
        assertEquals(BitmapState.info(qemuCopy), BitmapState.info(imagoCopy), line);
        assertEquals(0, Qemu.check(imagoCopy, "qcow2").status(), () -> line + ": " + Qemu.check(imagoCopy, "qcow2"));
        assertEquals(BitmapState.dirtyRuns(qemuCopy), BitmapState.dirtyRuns(imagoCopy), line);
    }

    /**
     * A bitmap added to an image that had none takes the same room as qemu-img's: it writes only the bytes of the new
     * bitmap table and directory, so the file ends where qemu-img's does and holds data (takes disk blocks, which
     * {@code info} counts as its actual size) in the same places, as the host's file system maps them.
     */
    @ParameterizedTest
    @ValueSource(strings = {"64M", "1G"})
    void addingABitmapTakesTheRoomQemuImgTakes(String size) throws IOException {
        for (String side : List.of("q", "i")) {
            Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", side + ".qcow2", size);
            Qemu.ok(dir, Qemu.io(), "-c", "write 0 1M", "-c", "write 32M 64k", side + ".qcow2");
        }
        Qemu.ok(dir, Qemu.img(), "bitmap", "--add", "q.qcow2", "b1");
        imago("bitmap", "--add", dir.resolve("i.qcow2").toString(), "b1").ok();
        assertEquals(Files.size(dir.resolve("q.qcow2")), Files.size(dir.resolve("i.qcow2")));
        assertEquals(fileExtents("q.qcow2"), fileExtents("i.qcow2"));
        assertEquals(BitmapState.info(dir.resolve("q.qcow2")), BitmapState.info(dir.resolve("i.qcow2")));
        assertEquals(0, Qemu.check(dir.resolve("i.qcow2"), "qcow2").status());
    }

    /** Where the file holds data and where holes (SEEK_DATA/SEEK_HOLE, through qemu-img map of the file as raw). */
    private String fileExtents(String file) {
        return Qemu.ok(dir, Qemu.img(), "map", "-f", "raw", "--output=json", file).replaceAll("\"offset\": \\d+", "");
    }

    /** The extents imago reports are those qemu-nbd exports for the bitmaps imago changed. */
    @Test
    void qemuNbdExportsTheExtentsImagoStored() throws IOException {
        Files.copy(dir.resolve("base.qcow2"), dir.resolve("i.qcow2"));
        imago("bitmap", "--add", "-g", "512", "--merge", "b0", "--disable", dir.resolve("i.qcow2").toString(), "n")
                .ok();
        imago("bitmap", "--merge", "o", "-b", dir.resolve("other.qcow2").toString(), dir.resolve("i.qcow2").toString(),
                "n").ok();
        imago("bitmap", "--clear", dir.resolve("i.qcow2").toString(), "b0").ok();
        Files.copy(dir.resolve("base.qcow2"), dir.resolve("q.qcow2"));
        Qemu.ok(dir, Qemu.img(), "bitmap", "--add", "-g", "512", "--merge", "b0", "--disable", "q.qcow2", "n");
        Qemu.ok(dir, Qemu.img(), "bitmap", "--merge", "o", "-b", "other.qcow2", "q.qcow2", "n");
        Qemu.ok(dir, Qemu.img(), "bitmap", "--clear", "q.qcow2", "b0");
        for (String name : List.of("n", "b0", "b1")) {
            assertEquals(BitmapState.nbdMap(dir.resolve("q.qcow2"), name),
                    BitmapState.nbdMap(dir.resolve("i.qcow2"), name), name);
        }
    }

    private static String normalize(String err, String program, String copyPrefix) {
        return err.replace(program, "").replace(copyPrefix, "").replaceAll("#block[0-9]+", "#block");
    }
}
