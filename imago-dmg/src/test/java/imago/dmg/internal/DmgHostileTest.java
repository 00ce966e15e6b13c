package imago.dmg.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.probe.Imago;
import imago.testkit.DmgImages;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile trailers, forks and block tables: one clear exception naming the file (and offset) each, bounded memory
 * whatever the trailer claims; QEMU refuses the same images (checked with {@code qemu-img info -f dmg}).
 */
class DmgHostileTest {
    @TempDir
    Path dir;

    private int files;

    private static byte[] good() {
        byte[] content = DmgReadDifferentialTest.content(64, new Random(1));
        return DmgImages.image(content, List.of(new DmgImages.Plan(DmgChunk.RAW, 16),
                new DmgImages.Plan(DmgChunk.ZLIB, 16), new DmgImages.Plan(DmgChunk.ZLIB, 16),
                new DmgImages.Plan(DmgChunk.RAW, 16)), false);
    }

    private static ByteBuffer trailer(byte[] image) {
        return ByteBuffer.wrap(image, image.length - 512, 512).slice();
    }

    @Test
    void trailersQemuRefusesToo() throws IOException {
        assertRefused(new byte[0], "dmg file must be at least 512 bytes long", false);
        assertRefused(new byte[100], "Could not locate UDIF trailer in dmg file", true);
        byte[] noKoly = good();
        noKoly[noKoly.length - 512] = 'K';
        assertRefused(noKoly, "Could not locate UDIF trailer in dmg file", true);
        byte[] fork = good();
        trailer(fork).putLong(0x28, 1L << 40).putLong(0x30, 10);
        assertRefused(fork, "the resource fork (10 bytes at 1099511627776) does not lie before the trailer", false);
        byte[] xml = good();
        trailer(xml).putLong(0xe0, 1L << 40);
        assertRefused(xml, "the XML property list (1099511627776 bytes at", false);
        byte[] none = good();
        trailer(none).putLong(0xe0, 0);
        assertRefused(none, "the trailer names neither a resource fork nor an XML property list", false);
        byte[] negative = good();
        trailer(negative).putLong(0x1ec, -1);
        assertRefused(negative, "is negative", false);
    }

    /** QEMU's bounds on a chunk: 64 MiB in the file, 64 MiB of sectors unless zeroes. */
    @Test
    void chunksLargerThanQemusBounds() throws IOException {
        byte[] content = new byte[64 * 512];
        List<DmgImages.Plan> plan = List.of(new DmgImages.Plan(DmgChunk.RAW, 32), new DmgImages.Plan(DmgChunk.RAW, 32));
        assertRefused(patchTable(DmgImages.image(content, plan, true), 0x10, 131073), "sector count 131073 for chunk 0"
                + " is larger than max (131072)", true);
        assertRefused(patchTable(DmgImages.image(content, plan, true), 0x20, (64L << 20) + 1), "length 67108865 for"
                + " chunk 0 is larger than max (67108864)", true);
    }

    /** Beyond QEMU: overlapping chunks refused on open; chunks past the end of the file and bad zlib on read. */
    @Test
    void overlapsAndChunksPastTheEnd() throws IOException {
        byte[] content = DmgReadDifferentialTest.content(64, new Random(2));
        List<DmgImages.Plan> plan = List.of(new DmgImages.Plan(DmgChunk.RAW, 32), new DmgImages.Plan(DmgChunk.ZLIB, 32));
        assertRefused(patchTable(DmgImages.image(content, plan, true), 0x08, 16), "chunks overlap at sector 32",
                Qemu7.OPENS);
        byte[] far = patchTable(DmgImages.image(content, plan, true), 0x18, 1L << 40);
        try (Image i = open(write(far))) {
            ImageException e = assertThrows(CorruptImageException.class, () -> i.read(ByteBuffer.allocate(512), 0));
            assertTrue(e.getMessage().contains("raw chunk 0 lies past the end of the file"), e.getMessage());
        }
        byte[] garbage = DmgImages.image(content, plan, false);
        Arrays.fill(garbage, 32 * 512, 32 * 512 + 16, (byte) 0x55);
        try (Image i = open(write(garbage))) {
            ImageException e = assertThrows(CorruptImageException.class,
                    () -> i.read(ByteBuffer.allocate(512), 32 * 512));
            assertTrue(e.getMessage().contains("zlib chunk 1 is not a zlib stream"), e.getMessage());
        }
        Qemu.Output q = Qemu.run(dir, Qemu.io(), "-f", "dmg", "-r", "-c", "read 16384 512", dir.resolve("h"
                + (files - 1) + ".dmg"));
        assertEquals(1, q.status(), "qemu-io fails that read too");
    }

    /**
     * The resource-fork image's first block table, its first chunk's field at {@code field} set to {@code value}
     * (the fork starts after the chunks' bytes: its data at 256, the table after its length).
     */
    private static byte[] patchTable(byte[] image, int field, long value) {
        ByteBuffer koly = trailer(image);
        long fork = koly.getLong(0x28);
        int table = (int) fork + 256 + 4;
        ByteBuffer.wrap(image).putLong(table + 204 + field, value);
        return image;
    }

    /** What qemu-img says of an image imago refuses. */
    private enum Qemu7 { SAME_WORDS, REFUSES, OPENS }

    private void assertRefused(byte[] bytes, String message, boolean qemuSaysSo) throws IOException {
        assertRefused(bytes, message, qemuSaysSo ? Qemu7.SAME_WORDS : Qemu7.REFUSES);
    }

    private void assertRefused(byte[] bytes, String message, Qemu7 qemu) throws IOException {
        Path image = write(bytes);
        ImageException e = assertThrows(ImageException.class, () -> open(image));
        assertTrue(e.getMessage().startsWith(image.toString()) && e.getMessage().contains(message), e.getMessage());
        Qemu.Output q = Qemu.run(dir, Qemu.img(), "info", "-f", "dmg", image);
        assertEquals(qemu == Qemu7.OPENS ? 0 : 1, q.status(), q.err());
        if (qemu == Qemu7.SAME_WORDS) {
            assertTrue(q.err().contains(message), q.err());
        }
    }

    private static Image open(Path image) throws IOException {
        return Imago.opener().path(image).format("dmg").open();
    }

    private Path write(byte[] bytes) throws IOException {
        return Files.write(dir.resolve("h" + files++ + ".dmg"), bytes);
    }
}
