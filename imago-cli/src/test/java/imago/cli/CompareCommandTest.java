package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code imago compare}: qemu-img compare's messages and exit codes (0 same, 1 different, 2 cannot open). */
class CompareCommandTest {
    @TempDir
    Path dir;

    private String raw(String name, String size, String... io) {
        String f = dir.resolve(name).toString();
        imago("create", "-q", "-f", "raw", f, size).ok();
        for (String c : io) {
            imago("io", "-f", "raw", "-c", c, f).ok();
        }
        return f;
    }

    private static void poke(String file, long offset, int value) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(file, "rw")) {
            raf.seek(offset);
            raf.write(value);
        }
    }

    @Test
    void identicalImages() {
        String a = raw("a.img", "8M", "write -q -P 7 1M 64k");
        String b = raw("b.img", "8M", "write -q -P 7 1M 64k");
        Run.Result r = imago("compare", a, b).ok();
        assertEquals("Images are identical.\n", r.out());
        assertEquals("", r.err());
        assertEquals("", imago("compare", "-q", a, b).ok().out());
        assertEquals("Images are identical.\n", imago("compare", "-f", "raw", "-F", "raw", "-s", a, b).ok().out());
    }

    @Test
    void dataAgainstAHoleThatReadsTheSame() {
        String a = raw("a.img", "8M", "write -q -P 0 2M 1M");
        String b = raw("b.img", "8M");
        assertEquals("Images are identical.\n", imago("compare", a, b).ok().out());
        assertEquals("Images are identical.\n", imago("compare", b, a).ok().out());
    }

    @Test
    void mismatchIsReportedAtTheStartOfItsSector() throws IOException {
        String a = raw("a.img", "8M", "write -q -P 7 1M 64k");
        String b = raw("b.img", "8M", "write -q -P 7 1M 64k");
        poke(b, (1 << 20) + 700, 9);
        Run.Result r = imago("compare", a, b);
        assertEquals(1, r.status());
        assertEquals("Content mismatch at offset 1049088!\n", r.out());
        assertEquals("", r.err());
        assertEquals(1, imago("compare", "-q", a, b).status());
        assertEquals("", imago("compare", "-q", a, b).out());
        // data on one side only, far past the first chunk
        String c = raw("c.img", "8M", "write -q -P 7 1M 64k");
        poke(c, (6 << 20) + 1300, 1);
        assertEquals("Content mismatch at offset 6292480!\n", imago("compare", a, c).out());
        assertEquals("Content mismatch at offset 6292480!\n", imago("compare", c, a).out());
    }

    @Test
    void differentSizes() throws IOException {
        String small = raw("small.img", "4M", "write -q -P 7 1M 64k");
        String big = raw("big.img", "6M", "write -q -P 7 1M 64k");
        assertEquals("Warning: Image size mismatch!\nImages are identical.\n", imago("compare", small, big).ok().out());
        assertEquals("Warning: Image size mismatch!\nImages are identical.\n", imago("compare", big, small).ok().out());
        Run.Result strict = imago("compare", "-s", small, big);
        assertEquals(1, strict.status());
        assertEquals("Strict mode: Image size mismatch!\n", strict.out());
        poke(big, 5 << 20, 1);
        Run.Result tail = imago("compare", small, big);
        assertEquals(1, tail.status());
        assertEquals("Warning: Image size mismatch!\nContent mismatch at offset 5242880!\n", tail.out());
    }

    @Test
    void anImageThatCannotBeOpenedIsExitStatusTwo() {
        String a = raw("a.img", "1M");
        String missing = dir.resolve("missing.img").toString();
        for (String[] args : new String[][] {{"compare", a, missing}, {"compare", missing, a}}) {
            Run.Result r = imago(args);
            assertEquals(2, r.status());
            assertEquals("imago: Could not open '" + missing + "': Could not open '" + missing
                    + "': No such file or directory\n",
                    r.err());
            assertEquals("", r.out());
        }
    }

    @Test
    void usageErrorsAreExitStatusOne() {
        String a = raw("a.img", "1M");
        // qemu-img's two lines: the reason, then where to look
        Run.Result one = imago("compare", a);
        assertEquals(1, one.status());
        assertEquals("imago: Expecting two image file names\nTry 'imago --help' for more information\n", one.err());
        Run.Result bad = imago("compare", "-x", a, a);
        assertEquals(1, bad.status());
        assertEquals("imago: unrecognized option '-x'\nTry 'imago --help' for more information\n", bad.err());
    }
}
