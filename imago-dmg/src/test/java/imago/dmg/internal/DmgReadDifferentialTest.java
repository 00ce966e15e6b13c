package imago.dmg.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.DmgImages;
import imago.testkit.GuestContent;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * imago reads dmg images as qemu-img does: built from the published layout (zero, ignored, raw and zlib chunks, two
 * block tables, in an XML property list or a resource fork, odd file lengths), each is read by both, byte for byte
 * ({@code qemu-img convert -f dmg -O raw}); both refuse to write or create one; a chunk type neither reads fails the
 * read of its sectors in both, while the rest of the image stays readable.
 */
class DmgReadDifferentialTest {
    @TempDir
    Path dir;

    static byte[] content(int sectors, Random random) {
        return GuestContent.runs(sectors * 512, random, r -> 1 + r.nextInt(30_000));
    }

    static List<DmgImages.Plan> plan(int sectors, Random random, int... types) {
        List<DmgImages.Plan> plan = new ArrayList<>();
        int left = sectors;
        while (left > 0) {
            int n = Math.min(left, 1 + random.nextInt(300));
            plan.add(new DmgImages.Plan(types[random.nextInt(types.length)], n));
            left -= n;
        }
        return plan;
    }

    @ParameterizedTest
    @CsvSource({"800, false, 0, 1", "1500, true, 0, 2", "333, false, 100, 3", "2048, true, 7, 4"})
    void readsWhatQemuReads(int sectors, boolean resourceFork, int tail, long seed) throws IOException {
        Random random = new Random(seed);
        byte[] content = content(sectors, random);
        List<DmgImages.Plan> plan = plan(sectors, random, DmgChunk.RAW, DmgChunk.ZLIB, DmgChunk.ZLIB);
        // zero and ignored chunks where the content is zero
        List<DmgImages.Plan> fixed = new ArrayList<>();
        long at = 0;
        for (DmgImages.Plan p : plan) {
            boolean zero = true;
            for (int k = (int) at * 512; k < (at + p.sectors()) * 512 && zero; k++) {
                zero = content[k] == 0;
            }
            fixed.add(zero ? new DmgImages.Plan(random.nextBoolean() ? DmgChunk.ZEROES : DmgChunk.IGNORED,
                    p.sectors()) : p);
            at += p.sectors();
        }
        byte[] bytes = DmgImages.image(content, fixed, resourceFork);
        // files of odd lengths: the trailer is found in the last 515 bytes
        byte[] padded = Arrays.copyOf(bytes, bytes.length + tail);
        Path image = Files.write(dir.resolve("x.dmg"), padded);
        if (tail > 0) {
            System.arraycopy(bytes, bytes.length - 512, padded, padded.length - 512, 512);
            Arrays.fill(padded, bytes.length - 512, padded.length - 512, (byte) 0);
            Files.write(image, padded);
        }
        Qemu.ok(dir, Qemu.img(), "convert", "-f", "dmg", "-O", "raw", image, "q.raw");
        byte[] qemu = Files.readAllBytes(dir.resolve("q.raw"));
        assertArrayEquals(content, qemu, "the builder's image holds the content (qemu-img's reading)");
        try (Image i = Imago.opener().path(image).format("dmg").open()) {
            GuestContent.assertReads(i, qemu, random, 40, 200_000);
        }
    }

    /** A bzip2 or ADC chunk: its sectors fail to read in both tools; the sectors around it read. */
    @ParameterizedTest
    @CsvSource({"-2147483642", "-2147483644", "-2147483641"})
    void chunksOfTypesNotReadFailOnlyWhereRead(int type) throws IOException {
        byte[] content = content(300, new Random(5));
        List<DmgImages.Plan> plan = List.of(new DmgImages.Plan(DmgChunk.RAW, 100),
                new DmgImages.Plan(type, 100), new DmgImages.Plan(DmgChunk.ZLIB, 100));
        Path image = Files.write(dir.resolve("t.dmg"), DmgImages.image(content, plan, false));
        assertEquals(0, Qemu.run(dir, Qemu.io(), "-f", "dmg", "-r", "-c", "read 0 51200", "-c", "read 102400 51200",
                image).status());
        assertEquals(1, Qemu.run(dir, Qemu.io(), "-f", "dmg", "-r", "-c", "read 51200 512", image).status());
        try (Image i = Imago.opener().path(image).format("dmg").open()) {
            ByteBuffer head = ByteBuffer.allocate(51200);
            i.read(head, 0);
            assertArrayEquals(Arrays.copyOf(content, 51200), head.array());
            ByteBuffer tail = ByteBuffer.allocate(51200);
            i.read(tail, 102400);
            assertArrayEquals(Arrays.copyOfRange(content, 102400, 153600), tail.array());
            ImageException e = assertThrows(UnsupportedFeatureException.class,
                    () -> i.read(ByteBuffer.allocate(512), 51200));
            assertTrue(e.getMessage().contains(DmgChunk.typeName(type) + " chunk, which imago does not read"),
                    e.getMessage());
        }
    }

    /**
     * As QEMU, a file named *.dmg probes as dmg (nothing in its bytes says so); another name probes as raw (a magic
     * number beats the name: ReadOnlyFormatsDifferentialTest, where the other formats are installed).
     */
    @Test
    void probedByTheFileName() throws IOException {
        byte[] bytes = DmgImages.image(content(64, new Random(3)), List.of(new DmgImages.Plan(DmgChunk.ZLIB, 32),
                new DmgImages.Plan(DmgChunk.RAW, 32)), false);
        Path dmg = Files.write(dir.resolve("a.dmg"), bytes);
        Path img = Files.write(dir.resolve("a.img"), bytes);
        assertEquals("dmg", Imago.probe(dmg));
        assertEquals("raw", Imago.probe(img));
        assertTrue(Qemu.ok(dir, Qemu.img(), "info", dmg).contains("file format: dmg"));
        assertTrue(Qemu.ok(dir, Qemu.img(), "info", img).contains("file format: raw"));
    }

    @Test
    void writingAndCreatingAreRefused() throws IOException {
        byte[] content = new byte[4096];
        Path image = Files.write(dir.resolve("x.dmg"), DmgImages.image(content,
                List.of(new DmgImages.Plan(DmgChunk.ZEROES, 4), new DmgImages.Plan(DmgChunk.ZEROES, 4)), false));
        assertThrows(ReadOnlyImageException.class, () -> Imago.opener().path(image).format("dmg").writable(true)
                .open());
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Imago.create(dir.resolve("new.dmg"), "dmg", CreateOptions.ofSize(1 << 20)));
        assertEquals(Feature.CREATE, e.feature());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "create", "-f", "dmg", "new.dmg", "1M");
        assertTrue(q.err().endsWith(e.getMessage().substring(e.getMessage().indexOf("Format driver")) + "\n"), q.err());
    }
}
