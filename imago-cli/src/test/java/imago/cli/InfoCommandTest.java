package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InfoCommandTest {
    @TempDir
    Path dir;

    private String raw(String name, String size) {
        String f = dir.resolve(name).toString();
        imago("create", "-q", "-f", "raw", f, size).ok();
        return f;
    }

    @Test
    void printsHumanOutputLikeQemuImg() {
        String f = raw("x.img", "64M");
        Run.Result r = imago("info", f).ok();
        assertEquals("image: " + f + "\nfile format: raw\nvirtual size: 64 MiB (67108864 bytes)\ndisk size: 4 KiB\n",
                r.out());
        assertEquals("", r.err());
    }

    @Test
    void printsJsonLikeQemuImg() {
        String f = raw("x.img", "1G");
        imago("io", "-f", "raw", "-c", "write -q 0 4k", f).ok();
        Run.Result r = imago("info", "--output=json", f).ok();
        assertEquals("{\n    \"virtual-size\": 1073741824,\n    \"filename\": \"" + f + "\",\n    \"format\": \"raw\",\n"
                + "    \"actual-size\": 4096,\n    \"dirty-flag\": false\n}\n", r.out());
        assertEquals(r.out(), imago("info", "--output", "json", "-f", "raw", f).ok().out());
    }

    @Test
    void backingChainOfARawImageIsAListOfOne() {
        String f = raw("x.img", "1M");
        String json = imago("info", "--backing-chain", "--output=json", f).ok().out();
        assertTrue(json.startsWith("[\n    {\n        \"virtual-size\": 1048576,\n"), json);
        assertTrue(json.endsWith("    }\n]\n"), json);
        assertEquals(imago("info", f).ok().out(), imago("info", "--backing-chain", f).ok().out());
    }

    @Test
    void refusesABadOutputFormat() {
        String f = raw("x.img", "1M");
        assertEquals("imago: --output must be used with human or json as argument.",
                imago("info", "--output=xml", f).failsWithOneLine());
    }

    @Test
    void namesTheFileAsTyped() {
        String line = imago("info", "no-such.img").failsWithOneLine();
        assertEquals("imago: Could not open 'no-such.img': Could not open 'no-such.img': No such file or directory",
                line);
    }

    @Test
    void opensWithEveryGate() {
        String f = raw("x.img", "1M");
        for (String gate : new String[] {"permissive", "confined", "deny"}) {
            imago("--gate=" + gate, "info", f).ok();
            imago("info", "--gate", gate, f).ok();
        }
    }
}
