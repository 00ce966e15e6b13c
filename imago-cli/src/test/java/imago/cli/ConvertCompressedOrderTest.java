package imago.cli;

import static imago.cli.Run.imago;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code imago convert -c} stores compressed clusters in guest order, as qemu-img convert does without {@code -W}:
 * the output does not depend on the threads' timing nor on {@code -m}, and for zstd it is qemu-img's file byte for
 * byte (where both zstd libraries compress alike, as they do this fixture's clusters).
 * zlib output differs in the compressed bytes themselves (Java's deflater has no 4 KiB window), so there the clusters
 * are found in guest order in both files, allocated alike.
 */
class ConvertCompressedOrderTest {
    private static final int CLUSTER = 64 << 10;

    @TempDir
    Path dir;

    @BeforeAll
    static void qemu() {
        Qemu.require();
    }

    /**
     * 6 MiB (three copy chunks) of 64 KiB clusters in turn random (stored uncompressed), zero, numbered text lines,
     * half random, a constant byte and a repeated number: data whose zstd frames the zstd versions of qemu-img and
     * imago write alike.
     */
    private Path source() throws IOException {
        Path src = dir.resolve("src.raw");
        Random r = new Random(42);
        try (OutputStream out = Files.newOutputStream(src)) {
            for (int i = 0; i < 96; i++) {
                byte[] c = new byte[CLUSTER];
                switch (i % 6) {
                    case 0 -> r.nextBytes(c);
                    case 2 -> {
                        StringBuilder text = new StringBuilder();
                        for (int j = 0; text.length() < CLUSTER; j++) {
                            text.append("cluster ").append(i).append(" line ").append(j).append('\n');
                        }
                        System.arraycopy(text.toString().getBytes(StandardCharsets.US_ASCII), 0, c, 0, CLUSTER);
                    }
                    case 3 -> {
                        byte[] half = new byte[CLUSTER / 2];
                        r.nextBytes(half);
                        System.arraycopy(half, 0, c, 0, half.length);
                    }
                    case 4 -> Arrays.fill(c, (byte) i);
                    case 5 -> {
                        byte[] n = String.format("%08d", i * 7919).getBytes(StandardCharsets.US_ASCII);
                        for (int k = 0; k < CLUSTER; k += 8) {
                            System.arraycopy(n, 0, c, k, 8);
                        }
                    }
                    default -> {
                        // zero
                    }
                }
                out.write(c);
            }
        }
        return src;
    }

    private Path convert(Path src, String name, String type, String... extra) throws IOException {
        Path out = dir.resolve(name);
        String[] head = {"convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=" + type};
        String[] args = Arrays.copyOf(head, head.length + extra.length + 2);
        System.arraycopy(extra, 0, args, head.length, extra.length);
        args[args.length - 2] = src.toString();
        args[args.length - 1] = out.toString();
        Run.Result r = imago(args).ok();
        assertEquals("", r.out() + r.err());
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"zlib", "zstd"})
    void sameFileWhateverTheThreadsAndTiming(String type) throws IOException {
        Path src = source();
        byte[] first = Files.readAllBytes(convert(src, "a.qcow2", type));
        assertArrayEquals(first, Files.readAllBytes(convert(src, "b.qcow2", type)));
        assertArrayEquals(first, Files.readAllBytes(convert(src, "m1.qcow2", type, "-m", "1")));
        assertArrayEquals(first, Files.readAllBytes(convert(src, "m8.qcow2", type, "-m", "8")));
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src,
                dir.resolve("a.qcow2")));
    }

    /** {@code -W} stores chunks as they are compressed: a correct image, in whatever order. */
    @Test
    void outOfOrderStillMakesTheSameImage() throws IOException {
        Path src = source();
        Path out = convert(src, "w.qcow2", "zstd", "-W", "-m", "4");
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", out);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertTrue(check.out().contains("compressed clusters"), check.out());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src,
                out));
    }

    @Test
    void zstdIsQemuImgsFileByteForByte() throws IOException {
        Path src = source();
        byte[] ours = Files.readAllBytes(convert(src, "ours.qcow2", "zstd"));
        Path theirs = dir.resolve("theirs.qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", src,
                theirs);
        // the whole file: tables, compressed clusters packed in guest order, data clusters between them, and the end
        // rounded up to 512 bytes after the last compressed cluster (which ends inside a sector here)
        assertArrayEquals(Files.readAllBytes(theirs), ours);
        assertEquals(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs),
                Qemu.ok(dir, "qemu-img", "map", "--output=json", dir.resolve("ours.qcow2")));
    }

    @Test
    void zlibPlacesWhatItDoesNotCompressAsQemuImgDoes() throws IOException {
        Path src = source();
        Path ours = convert(src, "ours.qcow2", "zlib");
        Path theirs = dir.resolve("theirs.qcow2");
        Qemu.ok(dir, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zlib", src,
                theirs);
        Qemu.Output check = Qemu.run(dir, "qemu-img", "check", ours);
        assertEquals(0, check.status(), () -> check.out() + check.err());
        assertEquals("Images are identical.\n", Qemu.ok(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", src,
                ours));
        long[] q = hostOffsets(theirs);
        long[] o = hostOffsets(ours);
        // compressed bytes are packed one after another, data clusters allocated one after another (compressed bytes
        // may fill the rest of a cluster allocated before a data cluster): each in guest order
        assertInGuestOrder(q, true);
        assertInGuestOrder(q, false);
        assertInGuestOrder(o, true);
        assertInGuestOrder(o, false);
        for (int i = 0; i < q.length; i++) {
            assertEquals(Long.signum(q[i]), Long.signum(o[i]), "cluster " + i + " stored alike");
        }
        assertEquals(ConvertCompressedTest.withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", theirs)),
                ConvertCompressedTest.withoutOffsets(Qemu.ok(dir, "qemu-img", "map", "--output=json", ours)));
    }

    /**
     * The host offset of each guest cluster of a qcow2 file with one L2 table: negated for a compressed cluster, 0
     * where unallocated.
     */
    private static long[] hostOffsets(Path qcow2) throws IOException {
        ByteBuffer file = ByteBuffer.wrap(Files.readAllBytes(qcow2));
        int bits = file.getInt(20);
        long l2 = file.getLong((int) file.getLong(40)) & 0x00ff_ffff_ffff_fe00L;
        int clusters = (int) (file.getLong(24) >> bits);
        long[] out = new long[clusters];
        long compressedMask = (1L << (62 - (bits - 8))) - 1;
        for (int i = 0; i < clusters; i++) {
            long e = file.getLong((int) l2 + 8 * i);
            out[i] = (e & (1L << 62)) != 0 ? -(e & compressedMask) : e & 0x00ff_ffff_ffff_fe00L;
        }
        return out;
    }

    /** Each compressed (or data) cluster lies after the compressed (or data) one before it in guest order. */
    private static void assertInGuestOrder(long[] host, boolean compressed) {
        long last = 0;
        for (int i = 0; i < host.length; i++) {
            long h = compressed ? -host[i] : host[i];
            if (h > 0) {
                assertTrue(h > last, "cluster " + i + " at " + h + ", before the one before it at " + last);
                last = h;
            }
        }
        assertTrue(last > 0, "nothing allocated");
    }
}
