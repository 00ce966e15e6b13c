package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCommandTest {
    private static final Pattern COMPLETED = Pattern.compile("Run completed in \\d+\\.\\d{3} seconds\\.\n");

    @TempDir
    Path dir;

    private String raw(String size) {
        String f = dir.resolve("x.img").toString();
        imago("create", "-q", "-f", "raw", f, size).ok();
        return f;
    }

    @Test
    void readsWithQemuImgsDefaultsAndOutput() {
        String f = raw("1M");
        Run.Result r = imago("bench", "-f", "raw", f).ok();
        String[] lines = r.out().split("(?<=\n)");
        assertEquals(2, lines.length, r.out());
        assertEquals("Sending 75000 read requests, 4096 bytes each, 64 in parallel (starting at offset 0, step size "
                + "4096)\n", lines[0]);
        assertTrue(COMPLETED.matcher(lines[1]).matches(), lines[1]);
        assertEquals("", r.err());
    }

    @Test
    void writesThePatternWrappingAtTheEnd() {
        String f = raw("64k");
        Run.Result r = imago("bench", "-w", "-f", "raw", "-c", "40", "-d", "3", "-s", "1k", "-S", "2k", "-o", "0x400",
                "--pattern=0x5a", "-n", "-t", "none", f).ok();
        assertTrue(r.out().startsWith("Sending 40 write requests, 1024 bytes each, 3 in parallel (starting at offset "
                + "1024, step size 2048)\n"), r.out());
        // 40 requests of 1 KiB every 2 KiB from 1 KiB wrap once around 64 KiB: odd KiBs hold the pattern
        String io = imago("io", "-f", "raw", "-c", "read -q -P 0x5a 1k 1k", "-c", "read -q -P 0x5a 63k 1k",
                "-c", "read -q -P 0 0 1k", "-c", "read -q -P 0 62k 1k", f).ok().out();
        assertFalse(io.contains("Pattern verification failed"), io);
    }

    @Test
    void aRequestPastTheEndFails() {
        String f = raw("1M");
        Run.Result r = imago("bench", "-f", "raw", "-c", "10", "-o", "2M", f);
        assertEquals(1, r.status());
        assertTrue(r.out().startsWith("Sending 10 read requests"), r.out());
        assertEquals("imago: Failed request: Input/output error\n", r.err()); // qemu-img's words (EIO)
        assertEquals(1, r.err().lines().count(), r.err());
    }

    @Test
    void badArgumentsAreOneLine() {
        String f = raw("1M");
        assertEquals("imago: Invalid request count specified", imago("bench", "-c", "x", f).failsWithOneLine());
        assertEquals("imago: Invalid request count specified", imago("bench", "-c", "-1", f).failsWithOneLine());
        assertEquals("imago: Invalid queue depth specified", imago("bench", "-d", "3000000000", f).failsWithOneLine());
        assertEquals("imago: Invalid pattern byte specified", imago("bench", "--pattern=256", f).failsWithOneLine());
        assertEquals("imago: Invalid cache mode", imago("bench", "-t", "foo", f).failsWithOneLine());
        assertEquals("imago: --flush-interval is only available in write tests",
                imago("bench", "--flush-interval=100", f).failsWithOneLine());
        assertEquals("imago: Flush interval can't be smaller than depth",
                imago("bench", "-w", "--flush-interval=10", f).failsWithOneLine());
        assertEquals("imago: Invalid flush interval specified",
                imago("bench", "-w", "--flush-interval=x", f).failsWithOneLine());
        assertEquals("imago: Invalid buffer size specified. Must be between 0 and 2147483647.",
                imago("bench", "-s", "2G", f).failsWithOneLine());
    }

    @Test
    void flushesEveryIntervalWithAndWithoutDraining() {
        String f = raw("1M");
        for (String drain : new String[] {"--no-drain", "-q"}) {
            Run.Result r = imago("bench", "-f", "raw", "-w", "-c", "1000", "-d", "8", "--flush-interval=16", drain, f)
                    .ok();
            assertTrue(r.out().startsWith("Sending 1000 write requests, 4096 bytes each, 8 in parallel (starting at "
                    + "offset 0, step size 4096)\nSending flush every 16 requests\nRun completed in "), r.out());
        }
    }
}
