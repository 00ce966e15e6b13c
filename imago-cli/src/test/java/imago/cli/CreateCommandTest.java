package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CreateCommandTest {
    @TempDir
    Path dir;

    @Test
    void createsARawImageAndPrintsQemusFormattingLine() throws IOException {
        Path x = dir.resolve("x.img");
        Run.Result r = imago("create", "-f", "raw", x.toString(), "64M").ok();
        assertEquals("Formatting '" + x + "', fmt=raw size=67108864\n", r.out());
        assertEquals("", r.err());
        assertEquals(64L << 20, Files.size(x));
    }

    @Test
    void acceptsQemuSizeSyntaxAndDefaultsToRaw() throws IOException {
        Path x = dir.resolve("x.img");
        assertEquals("Formatting '" + x + "', fmt=raw size=1610612736\n", imago("create", x.toString(), "1.5G").ok().out());
        imago("create", "-q", x.toString(), "0x1000").ok();
        assertEquals(4096, Files.size(x));
        imago("create", "-q", "-f", "raw", x.toString(), "1.1k").ok();
        assertEquals(1536, Files.size(x), "1126 bytes, rounded up to whole sectors as qemu-img does");
        imago("create", "-q", "-f", "raw", "-o", "size=8k", x.toString()).ok();
        assertEquals(8192, Files.size(x));
    }

    @Test
    void quietPrintsNothing() {
        Run.Result r = imago("create", "-q", "-f", "raw", dir.resolve("q.img").toString(), "1M").ok();
        assertEquals("", r.out());
        assertEquals("", r.err());
    }

    @Test
    void preallocationIsPassedAndPrinted() throws IOException {
        Path x = dir.resolve("full.img");
        Run.Result r = imago("create", "-f", "raw", "-o", "preallocation=full", x.toString(), "1M").ok();
        assertEquals("Formatting '" + x + "', fmt=raw size=1048576 preallocation=full\n", r.out());
        assertEquals(1 << 20, Files.size(x));
        // fully allocated: the file occupies its whole size
        String json = imago("info", "--output=json", x.toString()).ok().out();
        assertTrue(json.contains("\"actual-size\": 10"), json);
    }

    @Test
    void refusesABadPreallocationMode() {
        String line = imago("create", "-f", "raw", "-o", "preallocation=foo", dir.resolve("p.img").toString(), "1M")
                .failsWithOneLine();
        assertTrue(line.endsWith("p.img: invalid parameter value: foo"), line); // qemu-img's file layer's words
        assertFalse(Files.exists(dir.resolve("p.img")));
    }

    @Test
    void refusesNegativeMalformedAndHugeSizes() {
        String f = dir.resolve("s.img").toString();
        // qemu-img 7.2's getopt takes a negative size after the file name for an option, and so does imago
        Run.Result negative = imago("create", "-f", "raw", f, "-1");
        assertEquals(1, negative.status());
        assertEquals("imago: unrecognized option '-1'\nTry 'imago --help' for more information\n", negative.err());
        // not a number: qemu-img's two lines
        String suffixes = "imago: Invalid image size specified. You may use k, M, G, T, P or E suffixes for\n"
                + "imago: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n";
        for (String size : new String[] {"-1", "12x", "1e3"}) {
            Run.Result r = size.startsWith("-") ? imago("create", "-f", "raw", f, "--", size)
                    : imago("create", "-f", "raw", f, size);
            assertEquals(1, r.status(), size);
            assertEquals(suffixes, r.err(), size);
        }
        assertEquals("imago: Invalid image size specified. Must be between 0 and 9223372036854775807.",
                imago("create", "-f", "raw", f, "8E").failsWithOneLine());
        assertFalse(Files.exists(dir.resolve("s.img")));
    }

    @Test
    void needsASize() {
        String f = dir.resolve("n.img").toString();
        assertEquals("imago: " + f + ": Image creation needs a size parameter", imago("create", "-f", "raw", f)
                .failsWithOneLine());
    }

    @Test
    void refusesAnUnknownFormatNamingTheInstalledOnes() {
        String f = dir.resolve("u.img").toString();
        String line = imago("create", "-f", "foo", f, "1M").failsWithOneLine();
        assertTrue(line.startsWith("imago: " + f + ": Unknown file format 'foo' (installed formats: "), line);
        assertTrue(line.contains("raw"), line);
    }

    @Test
    void refusesADirectory() {
        String line = imago("create", "-q", "-f", "raw", dir.toString(), "1M").failsWithOneLine();
        assertTrue(line.endsWith("Is a directory"), line);
    }

    @Test
    void refusesAMissingDirectory() {
        String f = dir.resolve("no/such/dir/x.img").toString();
        assertEquals("imago: " + f + ": Could not create '" + f + "': No such file or directory",
                imago("create", "-q", "-f", "raw", f, "1M").failsWithOneLine());
    }

    @Test
    void refusesRawOptionsItDoesNotKnow() {
        imago("create", "-q", "-f", "raw", "-o", "cluster_size=64k", dir.resolve("o.img").toString(), "1M")
                .failsWithOneLine();
    }

    @Test
    void checksTheBackingFileLikeQemuImg() {
        String top = dir.resolve("top.img").toString();
        // qemu-img's two lines, the second without the program's name
        Run.Result missing = imago("create", "-q", "-f", "qcow2", "-b", "missing.img", "-F", "raw", top);
        assertEquals(1, missing.status());
        assertTrue(missing.err().matches("imago: [^\n]*missing.img[^\n]*\nCould not open backing image.\n"),
                missing.err());
        assertTrue(imago("create", "-q", "-f", "qcow2", "-b", top, "-F", "qcow2", top, "1M").failsWithOneLine()
                .contains("same filename as the backing file"));
        imago("create", "-q", "-f", "raw", dir.resolve("base.img").toString(), "1M").ok();
        assertTrue(imago("create", "-q", "-f", "qcow2", "-b", "base.img", top).failsWithOneLine()
                .contains("without backing format"));
        // as qemu-img: raw has no backing file at all, which is the error that counts, before the backing file is
        // opened or compared with the new one's name
        for (String backing : List.of("base.img", "missing.img", top)) {
            assertEquals("imago: " + top + ": Backing file not supported for file format 'raw'", imago("create", "-q",
                    "-f", "raw", "-b", backing, "-F", "raw", top, "1M").failsWithOneLine(), backing);
        }
    }

    @Test
    void cowTakesABackingFileWithoutAFormatItCouldNotRecord() throws IOException {
        imago("create", "-q", "-f", "raw", dir.resolve("base.img").toString(), "1M").ok();
        String top = dir.resolve("top.cow").toString();
        imago("create", "-q", "-f", "cow", "-o", "backing_file=base.img,variant=uml-v3", top).ok();
        try (imago.api.Image image = imago.probe.Imago.open(Path.of(top))) {
            assertEquals("cow", image.format());
            assertEquals(1 << 20, image.size(), "the size comes from the backing file");
            assertEquals("raw", image.backing().orElseThrow().format());
        }
    }
}
