package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code imago convert -c} against {@code qemu-img convert -c} of the same source: the image must check
 * clean, compare identical, and map the same (compressed data without a host offset, incompressible data
 * with one, zero clusters unallocated) once host offsets are left out.
 */
class ConvertCompressedTest {
    private static final Pattern ENTRY = Pattern.compile("\\{ \"start\": (\\d+), \"length\": (\\d+), (.*?)(, "
            + "\"offset\": \\d+)?\\}");

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /** 12 MiB + 3 KiB: text-like data, random data, a constant run, holes and allocated zeroes. */
    private Path source() throws IOException {
        Path src = dir.resolve("src.raw");
        Random r = new Random(42);
        try (RandomAccessFile raf = new RandomAccessFile(src.toFile(), "rw")) {
            raf.setLength((12L << 20) + 3072);
            byte[] text = new byte[3 << 20];
            for (int i = 0; i < text.length; i++) {
                text[i] = (byte) ('a' + r.nextInt(16));
            }
            raf.seek(1 << 20);
            raf.write(text);
            byte[] random = new byte[1 << 20];
            r.nextBytes(random);
            raf.seek((5L << 20) + 4096);
            raf.write(random);
            raf.seek(8L << 20);
            raf.write(new byte[1 << 20]); // allocated zeroes
            byte[] constant = new byte[300_000];
            java.util.Arrays.fill(constant, (byte) 0x5a);
            raf.seek((10L << 20) + 12345);
            raf.write(constant);
            raf.seek((12L << 20) + 1000);
            raf.write(text, 0, 2000); // into the partial last cluster
        }
        return src;
    }

    @ParameterizedTest
    @CsvSource({"zlib,4k", "zlib,64k", "zlib,2M", "zstd,4k", "zstd,64k", "zstd,2M"})
    void likeQemuImg(String type, String clusterSize) throws IOException {
        Path src = source();
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        String o = "compression_type=" + type + ",cluster_size=" + clusterSize;
        Run.Result r = imago("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", o, src.toString(), ours.toString())
                .ok();
        assertEquals("", r.out() + r.err());
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", o, src, theirs);

        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertTrue(check.out().contains("No errors were found"), check.out());
        assertTrue(check.out().contains("compressed clusters"), check.out());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2",
                src, ours));
        List<String> ourMap = withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours));
        assertEquals(withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)), ourMap);
        assertTrue(ourMap.stream().anyMatch(e -> e.contains("\"data\": true") && !e.contains("offset")), ourMap::toString);
        if (!clusterSize.equals("2M")) {
            // the random MiB does not shrink (with 2M clusters it shares its cluster with text, which does)
            assertTrue(ourMap.stream().anyMatch(e -> e.contains("offset")), ourMap::toString);
        }
        // the same compression type, as qemu-img info shows it
        String info = Qemu.ok(dir, "qemu-img", "info", ours);
        assertTrue(info.contains("compression type: " + type), info);
    }

    /**
     * qemu-img map's entries with the host offset reduced to whether there is one, adjacent entries of
     * the same kind merged (host offsets differ where imago's compressed clusters are larger or smaller).
     */
    static List<String> withoutOffsets(String json) {
        List<String> out = new ArrayList<>();
        long start = -1;
        long end = -1;
        String kind = null;
        Matcher m = ENTRY.matcher(json);
        while (m.find()) {
            String k = m.group(3) + (m.group(4) != null ? ", offset" : "");
            long s = Long.parseLong(m.group(1));
            if (k.equals(kind) && s == end) {
                end = s + Long.parseLong(m.group(2));
                continue;
            }
            if (kind != null) {
                out.add(start + "+" + (end - start) + " " + kind);
            }
            kind = k;
            start = s;
            end = s + Long.parseLong(m.group(2));
        }
        if (kind != null) {
            out.add(start + "+" + (end - start) + " " + kind);
        }
        assertFalse(out.isEmpty(), json);
        return out;
    }

    @Test
    void withoutSparseDetectionZeroClustersAreCompressedToo() throws IOException {
        Path src = source();
        Path ours = dir.resolve("s0.qcow2");
        Path theirs = dir.resolve("s0-qemu.qcow2");
        imago("convert", "-c", "-S", "0", "-O", "qcow2", src.toString(), ours.toString()).ok();
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-S", "0", "-f", "raw", "-O", "qcow2", src, theirs);
        assertEquals(0, Qemu.run(dir, "qemu-img", "check", ours).status());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", src, ours));
        assertEquals(withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours)));
    }

    @Test
    void formatsWithoutCompressionAreRefusedAsByQemuImg() throws IOException {
        Path src = source();
        Path dst = dir.resolve("dst.raw");
        String line = imago("convert", "-c", "-O", "raw", src.toString(), dst.toString()).failsWithOneLine();
        Qemu.Output q = Qemu.run(dir, "qemu-img", "convert", "-c", "-O", "raw", src, dir.resolve("q.raw"));
        assertEquals(1, q.status());
        assertEquals(q.err().strip().replace("qemu-img: ", "imago: "), line);
        assertFalse(Files.exists(dst));
    }
}
