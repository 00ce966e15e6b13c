package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IoCommandTest {
    private static final Pattern TIMING = Pattern.compile(
            "[0-9.]+ (bytes|[KMGTPE]iB), 1 ops; [0-9:.]+( sec)? \\([0-9.]+ (bytes|[KMGTPE]iB)/sec and [0-9.]+ ops/sec\\)");

    @TempDir
    Path dir;
    private String f;

    @BeforeEach
    void image() {
        f = dir.resolve("x.img").toString();
        imago("create", "-q", "-f", "raw", f, "4M").ok();
    }

    private Run.Result io(String... commands) {
        String[] args = new String[commands.length * 2 + 4];
        args[0] = "io";
        args[1] = "-f";
        args[2] = "raw";
        for (int i = 0; i < commands.length; i++) {
            args[3 + 2 * i] = "-c";
            args[4 + 2 * i] = commands[i];
        }
        args[args.length - 1] = f;
        return imago(args);
    }

    /** The output with qemu-io's timing lines checked and removed. */
    private static List<String> lines(Run.Result r) {
        return r.out().lines().filter(l -> {
            if (l.contains(" ops; ")) {
                assertTrue(TIMING.matcher(l).matches(), l);
                return false;
            }
            return true;
        }).toList();
    }

    @Test
    void writesAndReadsPatterns() throws IOException {
        Run.Result w = io("write -P 0xab 1M 64k").ok();
        assertEquals(List.of("wrote 65536/65536 bytes at offset 1048576"), lines(w));
        assertEquals("", w.err());
        Run.Result r = io("read -P 0xab 1M 64k").ok();
        assertEquals(List.of("read 65536/65536 bytes at offset 1048576"), lines(r));
        byte[] all = Files.readAllBytes(Path.of(f));
        assertEquals((byte) 0xab, all[(1 << 20) + 65535]);
        assertEquals(0, all[(1 << 20) + 65536]);
        assertEquals(0, all[(1 << 20) - 1]);
    }

    @Test
    void writeDefaultsToPattern0xcdAndQuietPrintsNothing() throws IOException {
        Run.Result w = io("write -q 512 1k").ok();
        assertEquals("", w.out());
        assertEquals((byte) 0xcd, Files.readAllBytes(Path.of(f))[600]);
    }

    @Test
    void patternMismatchIsReportedAndFailsAfterTheOtherCommands() {
        io("write -P 0x11 64k 64k").ok();
        Run.Result r = io("read -P 0x12 64k 4k", "read -q 0 1");
        assertEquals(1, r.status());
        assertEquals(List.of("Pattern verification failed at offset 65536, 4096 bytes",
                "read 4096/4096 bytes at offset 65536"), lines(r));
        Run.Result partial = io("read -P 0x11 60k 8k");
        assertEquals(1, partial.status());
        assertEquals("Pattern verification failed at offset 61440, 8192 bytes", lines(partial).getFirst());
        assertEquals(0, io("read -P 0x11 -s 4k -l 4k 60k 8k").status());
    }

    @Test
    void dumpsLikeQemuIo() {
        io("write -P 0x41 0 20").ok();
        assertEquals(List.of(
                "00000000:  41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41  AAAAAAAAAAAAAAAA",
                "00000010:  41 41 41 41 00 00 00 00  AAAA....",
                "read 24/24 bytes at offset 0"), lines(io("read -v 0 24").ok()));
        assertEquals("0000fffa:  00 00 00 00 00 00  ......", lines(io("read -v 65530 6").ok()).getFirst());
    }

    @Test
    void readPastTheEndFailsWithQemuIosMessage() {
        Run.Result r = io("read 4M 1");
        assertEquals(1, r.status());
        assertEquals("read failed: Input/output error\n", r.out());
        assertEquals("", r.err());
        assertEquals("read failed: Input/output error\n", io("read 4095k 2k").out());
        assertEquals("write failed: Input/output error\n", io("write 4095k 2k").out());
        assertEquals("discard failed: Input/output error\n", io("discard 4095k 2k").out());
        assertEquals(List.of("read 0/0 bytes at offset 4194304"), lines(io("read 4M 0").ok()));
    }

    @Test
    void mapAllocLengthTruncateDiscardFlush() {
        assertEquals(List.of("4 MiB (0x400000) bytes     allocated at offset 0 bytes (0x0)"), lines(io("map").ok()));
        assertEquals(List.of("512/512 bytes allocated at offset 0 bytes", "4096/4096 bytes allocated at offset 3.996 MiB",
                "0/0 bytes allocated at offset 5 MiB"), lines(io("alloc 0", "alloc 4092k 16k", "alloc 5M").ok()));
        assertEquals(List.of("4 MiB", "8 MiB", "5 MiB"), lines(io("length", "truncate 8M", "length",
                "truncate -m full 5M", "length", "flush").ok()));
        assertEquals(List.of("discard 4096/4096 bytes at offset 0"), lines(io("discard 0 4k").ok()));
        assertEquals(List.of("wrote 4096/4096 bytes at offset 0"), lines(io("write -z -u 0 4k").ok()));
    }

    @Test
    void writesFromAPatternFileRepeatingIt() throws IOException {
        Path src = Files.writeString(dir.resolve("pattern.txt"), "abc");
        io("write -s " + src + " 100 10").ok();
        byte[] all = Files.readAllBytes(Path.of(f));
        assertEquals("abcabcabca", new String(all, 100, 10, java.nio.charset.StandardCharsets.US_ASCII));
        Run.Result missing = io("write -s " + dir.resolve("none") + " 0 1");
        assertEquals(1, missing.status());
        assertEquals(dir.resolve("none") + ": No such file or directory\n", missing.err());
    }

    @Test
    void parsingErrorsUseQemuIosWording() {
        Run.Result r = io("read x 1", "read 0", "read -x 0 1", "write -P 300 0 1", "map extra", "foo", "help foo",
                "write -z -P 1 0 1", "write 0 3G", "read 0 16E", "truncate x", "write -u 0 1");
        assertEquals(1, r.status());
        assertEquals(List.of(
                "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- x",
                "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset",
                "300 is not a valid pattern byte",
                "command foo not found",
                "Only one of -z, -P, and -s can be specified at the same time",
                "length cannot exceed 2147483136 without -n, given 3G",
                "Parsing error: argument too large -- 16E",
                "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- x",
                "-u requires -z to be specified"), lines(r));
        assertEquals(List.of(
                "bad argument count 1 to read, expected at least 2 arguments",
                "read: invalid option -- 'x'",
                "bad argument count 1 to map, expected 0 arguments",
                "command \"foo\" not found"), r.err().lines().toList());
    }

    @Test
    void quitStopsAndHelpListsTheCommands() {
        assertEquals(List.of("read 1/1 bytes at offset 0"), lines(io("r 0 1", "quit", "read 0 1").ok()));
        List<String> help = lines(io("help").ok());
        assertEquals("Use 'help commandname' for extended help.", help.getLast());
        assertTrue(help.contains("map  -- prints the allocated areas of a file"), help.toString());
        assertTrue(io("help write").ok().out().contains("-z, -- write zeroes"));
    }

    @Test
    void readOnlyRefusesWritesButReads() {
        Run.Result r = imago("io", "-r", "-c", "write 0 1", "-c", "read -q 0 1", f);
        assertEquals(1, r.status());
        assertEquals("imago: Block node is read-only\n", r.err());
        assertEquals("", r.out());
    }

    @Test
    void warnsLikeQemuIoWhenProbingGuessesRawForAWritableOpen() {
        Run.Result r = imago("io", "-c", "read -q 0 1", f).ok();
        assertEquals("WARNING: Image format was not specified for '" + f + "' and probing guessed raw.\n"
                + "         Automatically detecting the format is dangerous for raw images, write operations on block 0"
                + " will be restricted.\n"
                + "         Specify the 'raw' format explicitly to remove the restrictions.\n", r.err());
        assertEquals("", imago("io", "-r", "-c", "read -q 0 1", f).ok().err());
        assertEquals("", imago("io", "-f", "raw", "-c", "read -q 0 1", f).ok().err());
    }

    @Test
    void aProbedRawImageRefusesAFirstSectorThatWouldProbeAsAnotherFormat() throws IOException {
        Path qcow2Magic = Files.write(dir.resolve("magic"), new byte[] {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3});
        Run.Result r = imago("io", "-c", "write -s " + qcow2Magic + " 0 512", f);
        assertEquals(1, r.status());
        assertTrue(r.out().startsWith("write failed: "), r.out());
        imago("io", "-f", "raw", "-c", "write -q -s " + qcow2Magic + " 0 512", f).ok();
    }
}
