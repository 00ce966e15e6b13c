package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConvertCommandTest {
    @TempDir
    Path dir;

    /** A sparse 40 MiB source: random data, pattern runs, an explicit zero run and holes. */
    private Path source() throws IOException {
        Path src = dir.resolve("src.img");
        imago("create", "-q", "-f", "raw", src.toString(), "40M").ok();
        Random random = new Random(42);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            byte[] data = new byte[3 << 20];
            random.nextBytes(data);
            raf.seek(5 << 20);
            raf.write(data);
            raf.seek((20 << 20) + 777); // unaligned, across a chunk boundary
            raf.write(data, 0, 3 << 20);
            raf.seek(39L << 20);
            raf.write(new byte[1 << 20]); // allocated zeroes
            raf.seek((40L << 20) - 1);
            raf.write(7);
        }
        return src;
    }

    private static long allocated(Path p) throws IOException {
        String json = imago("info", "--output=json", p.toString()).ok().out();
        int i = json.indexOf("\"actual-size\": ");
        return Long.parseLong(json.substring(i + 15, json.indexOf(',', i)));
    }

    @Test
    void copiesContentsSparsely() throws IOException {
        Path src = source();
        Path dst = dir.resolve("dst.img");
        Run.Result r = imago("convert", "-O", "raw", src.toString(), dst.toString()).ok();
        assertEquals("", r.out());
        assertEquals("", r.err());
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
        // 6 MiB of data and one 4 KiB block at the end; the allocated zero MiB is not copied
        assertTrue(allocated(dst) <= (6L << 20) + (64 << 10), "allocated " + allocated(dst));
    }

    @Test
    void roundTripsThroughCow() throws IOException {
        Path src = source();
        Path cow = dir.resolve("via.cow");
        Path back = dir.resolve("back.img");
        // UML's v3 always has a backing file, so convert (which makes standalone images) writes QEMU's
        imago("convert", "-f", "raw", "-O", "cow", "-o", "variant=qemu", src.toString(), cow.toString()).ok();
        assertEquals("Images are identical.", imago("compare", src.toString(), cow.toString()).ok().out().strip());
        imago("convert", "-f", "cow", "-O", "raw", cow.toString(), back.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(back));
    }

    @Test
    void withoutSparseDetectionTheTargetIsFullyAllocated() throws IOException {
        Path src = source();
        Path dst = dir.resolve("full.img");
        imago("convert", "-S", "0", "-f", "raw", src.toString(), dst.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
        assertTrue(allocated(dst) >= 40L << 20, "allocated " + allocated(dst));
        imago("convert", "-S", "64k", src.toString(), dst.toString()).ok();
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
    }

    @Test
    void printsQemuStyleProgress() throws IOException {
        Path src = source();
        String out = imago("convert", "-p", "-O", "raw", src.toString(), dir.resolve("p.img").toString()).ok().out();
        assertTrue(out.startsWith("    (0.00/100%)\r"), out);
        assertTrue(out.endsWith("    (100.00/100%)\r\n"), out);
        assertEquals("", imago("convert", "-p", "-q", src.toString(), dir.resolve("q.img").toString()).ok().out());
    }

    @Test
    void convertsEmptyAndTinyImages() throws IOException {
        Path empty = dir.resolve("empty.img");
        imago("create", "-q", empty.toString(), "0").ok();
        imago("convert", empty.toString(), dir.resolve("e2.img").toString()).ok();
        assertEquals(0, Files.size(dir.resolve("e2.img")));
        Path tiny = dir.resolve("tiny.img");
        Files.write(tiny, new byte[] {1, 2, 3});
        imago("convert", "-f", "raw", tiny.toString(), dir.resolve("t2.img").toString()).ok();
        assertArrayEquals(java.util.Arrays.copyOf(new byte[] {1, 2, 3}, 512), Files.readAllBytes(dir.resolve("t2.img")),
                "a 3-byte raw file is one sector, the rest zeroes, as qemu-img converts it");
    }

    @Test
    void refusesBadArguments() throws IOException {
        Path src = source();
        String dst = dir.resolve("x.img").toString();
        assertTrue(imago("convert", "-O", "foo", src.toString(), dst).failsWithOneLine()
                .startsWith("imago: Unknown file format 'foo'"));
        assertTrue(imago("convert", "-S", "3", src.toString(), dst).failsWithOneLine()
                .contains("Valid sizes are multiples of 512 up to 16777216"));
        Run.Result notANumber = imago("convert", "-S", "4x", src.toString(), dst);
        assertEquals(1, notANumber.status());
        assertEquals("imago: Invalid buffer size for sparse output specified. You may use k, M, G, T, P or E suffixes "
                + "for\nimago: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n", notANumber.err());
        assertEquals("imago: Could not open 'nope.img': Could not open 'nope.img': No such file or directory",
                imago("convert", "nope.img", dst).failsWithOneLine());
        assertEquals("imago: Must specify image file name", imago("convert", src.toString()).failsWithOneLine());
    }
}
