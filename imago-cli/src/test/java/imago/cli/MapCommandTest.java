package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code imago map} on raw files made and written by imago (sparse files: holes read as zero). As with qemu-img,
 * create writes the first 4 KiB, so a fresh raw image maps data there.
 */
class MapCommandTest {
    @TempDir
    Path dir;

    /** 4 MiB: data at 1 MiB (64 KiB) and at 3 MiB (8 KiB), holes elsewhere. */
    private String image() {
        String f = dir.resolve("x.img").toString();
        imago("create", "-q", "-f", "raw", f, "4M").ok();
        imago("io", "-f", "raw", "-c", "write -q -P 1 1M 64k", "-c", "write -q -P 2 3M 8k", f).ok();
        return f;
    }

    private static String entry(long start, long length, boolean data) {
        return "{ \"start\": " + start + ", \"length\": " + length + ", \"depth\": 0, \"present\": true, \"zero\": "
                + !data + ", \"data\": " + data + ", \"offset\": " + start + "}";
    }

    @Test
    void jsonListsEveryExtentMerged() {
        String f = image();
        String out = imago("map", "--output=json", "-f", "raw", f).ok().out();
        String expected = "[" + String.join(",\n", entry(0, 4096, true), entry(4096, (1 << 20) - 4096, false),
                entry(1 << 20, 64 << 10, true),
                entry((1 << 20) + (64 << 10), (2 << 20) - (64 << 10), false), entry(3 << 20, 8 << 10, true),
                entry((3 << 20) + (8 << 10), (1 << 20) - (8 << 10), false)) + "]\n";
        assertEquals(expected, out);
    }

    @Test
    void humanListsOnlyData() {
        String f = image();
        assertEquals("Offset          Length          Mapped to       File\n"
                + "0               0x1000          0               " + f + "\n"
                + "0x100000        0x10000         0x100000        " + f + "\n"
                + "0x300000        0x2000          0x300000        " + f + "\n", imago("map", f).ok().out());
        assertEquals(imago("map", f).out(), imago("map", "--output", "human", f).ok().out());
    }

    @Test
    void startOffsetAndMaxLengthCutTheRange() {
        String f = image();
        assertEquals("[" + entry(1000, 4096 - 1000, true) + ",\n" + entry(4096, (1 << 20) - 4096, false) + ",\n"
                + entry(1 << 20, 4096, true) + "]\n",
                imago("map", "--output=json", "--start-offset=1000", "--max-length", "1051672", f).ok().out());
        assertEquals("[" + entry(1 << 20, 1, true) + "]\n",
                imago("map", "--output=json", "-s", "1M", "-l", "1", f).ok().out());
    }

    @Test
    void startAtOrPastTheEndPrintsAnEmptyExtent() {
        String f = image();
        assertEquals("[{ \"start\": 5242880, \"length\": 0, \"depth\": 0, \"present\": false, \"zero\": false, "
                + "\"data\": false}]\n", imago("map", "--output=json", "--start-offset=5M", f).ok().out());
        assertEquals("[{ \"start\": 4096, \"length\": 0, \"depth\": 0, \"present\": false, \"zero\": false, "
                + "\"data\": false}]\n", imago("map", "--output=json", "-s", "4k", "-l", "0", f).ok().out());
        assertEquals("Offset          Length          Mapped to       File\n", imago("map", "-s", "5M", f).ok().out());
    }

    @Test
    void errorsAreOneLine() {
        String f = image();
        assertEquals("imago: --output must be used with human or json as argument.",
                imago("map", "--output=xml", f).failsWithOneLine());
        Run.Result bad = imago("map", "--start-offset=x", f);
        assertEquals(1, bad.status());
        assertEquals("imago: Invalid start offset specified. You may use k, M, G, T, P or E suffixes for\n"
                + "imago: kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.\n", bad.err());
        String missing = dir.resolve("missing.img").toString();
        assertEquals("imago: Could not open '" + missing + "': Could not open '" + missing
                + "': No such file or directory",
                imago("map", missing).failsWithOneLine());
    }
}
