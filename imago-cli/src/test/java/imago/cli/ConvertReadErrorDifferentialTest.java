package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code convert} from a source whose reads fail (a compressed qcow2 with clusters that do not inflate), against
 * qemu-img 7.2. qemu-img reads each compressed cluster alone and prints one {@code error while reading at byte N}
 * line per failed read in flight: with {@code -m 1} exactly one, the first failing cluster in guest order; with more
 * coroutines one per failing read already started, in an order left to timing. imago prints the {@code -m 1} line
 * whatever {@code -m} is: the same status and bytes as qemu-img with {@code -m 1}, and a line qemu-img prints too
 * with its default 8.
 */
class ConvertReadErrorDifferentialTest {
    /** The clusters made unreadable: four in qemu-img's first window of 8, two past it. */
    private static final List<Integer> BROKEN = List.of(3, 4, 5, 6, 9, 20);

    @TempDir
    static Path dir;

    private static CliDifferential both;

    @BeforeAll
    static void images() throws IOException {
        byte[] pattern = new byte[4 << 20];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i % 251); // compresses, so each cluster is stored compressed
        }
        Files.write(dir.resolve("src.raw"), pattern);
        Qemu.ok(dir, Qemu.img(), "convert", "-c", "-O", "qcow2", "src.raw", "bad.qcow2");
        Qemu.ok(dir, Qemu.img(), "convert", "-c", "-O", "qcow2", "src.raw", "late.qcow2");
        spoil("bad.qcow2", BROKEN);
        spoil("late.qcow2", List.of(40, 41));
        both = new CliDifferential(dir);
    }

    /** Overwrites the start of each compressed cluster's deflate stream, so that it no longer inflates. */
    private static void spoil(String name, List<Integer> clusters) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(name).toFile(), "rw")) {
            f.seek(20);
            int clusterBits = f.readInt();
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            long l2 = f.readLong() & 0x00ff_ffff_ffff_fe00L;
            long hostMask = (1L << (62 - (clusterBits - 8))) - 1;
            for (int i : clusters) {
                f.seek(l2 + 8L * i);
                long entry = f.readLong();
                assertTrue((entry & 1L << 62) != 0, "cluster " + i + " is compressed");
                f.seek(entry & hostMask);
                f.write(new byte[] {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1});
            }
        }
    }

    /** With one coroutine, qemu-img's single line and status; imago's, whatever its own -m. */
    @ParameterizedTest
    @ValueSource(strings = {"-m 1 -O raw bad.qcow2 OUT", "-m 1 -O qcow2 bad.qcow2 OUT", "-m 1 -O raw late.qcow2 OUT",
        "-m 1 -W -O raw bad.qcow2 OUT", "-m 1 -c -O qcow2 bad.qcow2 OUT"})
    void failsAsQemuImgWithOneCoroutine(String line) throws Exception {
        CliDifferential.Outcome o = both.agree("convert", line, "raw");
        assertEquals(1, o.qemu().status(), o.qemu().err());
        assertEquals(1, o.qemu().err().lines().count(), o.qemu().err());
        for (String m : new String[] {"-m 8 ", "-m 3 ", ""}) {
            String more = line.replace("-m 1 ", m);
            Run.Result r = Run.imago(("convert " + more.replace("OUT", dir.resolve("imago-m.out").toString())
                    .replace("bad.qcow2", dir.resolve("bad.qcow2").toString())
                    .replace("late.qcow2", dir.resolve("late.qcow2").toString())).split(" "));
            assertEquals(o.imago().err(), r.err(), more);
        }
    }

    /**
     * With qemu-img's default 8 coroutines, it prints a line for each failing cluster among the first 8 (started
     * before any read ends), in an order left to timing; imago's one line is the first of them.
     */
    @Test
    void printsTheFirstOfQemuImgsLines() throws Exception {
        Qemu.Output theirs = Qemu.runImg(dir, "convert", "-O", "raw", dir.resolve("bad.qcow2").toString(),
                dir.resolve("q8.raw").toString());
        Run.Result ours = Run.imago("convert", "-O", "raw", dir.resolve("bad.qcow2").toString(),
                dir.resolve("i8.raw").toString());
        assertEquals(1, theirs.status());
        assertEquals(1, ours.status());
        Set<String> lines = Set.copyOf(theirs.err().replace("qemu-img: ", "").lines().toList());
        for (int cluster : BROKEN.subList(0, 4)) {
            assertTrue(lines.contains("error while reading at byte " + cluster * 65536L + ": Input/output error"),
                    theirs.err());
        }
        assertEquals("imago: error while reading at byte " + BROKEN.getFirst() * 65536L + ": Input/output error\n",
                ours.err());
    }
}
