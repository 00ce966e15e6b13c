package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Extent;
import imago.api.Image;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.probe.Imago;
import imago.testkit.Qemu;
import imago.testkit.QemuReads;
import imago.testkit.VhdiInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Differencing disks (which qemu-img reads as if they had no parent): a sector comes from the child where its
 * block's bitmap has its bit, from the parent opened through the open gate otherwise; every locator kind is
 * followed, and names the gate refuses (or that no host can mean) are refused with the file and offset.
 */
class VpcDifferencingTest {
    static final long SIZE = 12L << 20;

    /** A parent made by qemu-img and qemu-io; returns its content. */
    static byte[] parent(Path dir) throws IOException {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "vpc", "-o", "force_size=on", "parent.vhd", SIZE);
        QemuReads.qemuIo(dir, "vpc", "parent.vhd", List.of("write -P 0x71 0 3M", "write -P 0x72 5M 1M",
                "write -P 0x73 " + (SIZE - 4096) + " 4096"));
        Qemu.ok(dir, "qemu-img", "convert", "-f", "vpc", "-O", "raw", "parent.vhd", "parent.raw");
        return Files.readAllBytes(dir.resolve("parent.raw"));
    }

    /** A child with random bitmaps and data over a few blocks; writes the expected content into {@code expected}. */
    static VhdBuilder child(Random r, byte[] expected) {
        VhdBuilder b = new VhdBuilder(SIZE);
        int sectors = b.blockSize / 512;
        for (int block = 0; block < SIZE / b.blockSize; block++) {
            if (r.nextInt(3) == 0) {
                continue;
            }
            byte[] bitmap = new byte[b.bitmapLength()];
            byte[] data = new byte[b.blockSize];
            r.nextBytes(data);
            for (int s = 0; s < sectors; ) {
                int run = 1 + r.nextInt(300);
                boolean present = r.nextBoolean();
                for (int i = s; i < Math.min(sectors, s + run); i++) {
                    if (present) {
                        bitmap[i >>> 3] |= (byte) (0x80 >>> (i & 7));
                        System.arraycopy(data, i * 512, expected, block * b.blockSize + i * 512, 512);
                    }
                }
                s += run;
            }
            b.blocks.put(block, new VhdBuilder.Block(bitmap, data));
        }
        return b;
    }

    static Stream<List<VhdBuilder.Locator>> locators() {
        return Stream.of(List.of(VhdBuilder.Locator.w2ru(".\\parent.vhd")),
                List.of(VhdBuilder.Locator.w2ku("C:\\vms\\parent.vhd"), VhdBuilder.Locator.w2ru(".\\parent.vhd")),
                List.of(VhdBuilder.Locator.macx("file://./parent.vhd")), List.of());
    }

    @ParameterizedTest
    @MethodSource("locators")
    void readsSectorsFromTheChildOrTheParentByTheBitmap(List<VhdBuilder.Locator> locators, @TempDir Path dir)
            throws IOException {
        Qemu.require();
        byte[] expected = parent(dir);
        VhdBuilder b = child(new Random(locators.size()), expected);
        b.locators.addAll(locators);
        b.parentName = "parent.vhd";
        Files.write(dir.resolve("child.vhd"), b.build());
        try (Image image = Imago.opener().path(dir.resolve("child.vhd")).open()) {
            assertEquals("vpc", image.format());
            assertTrue(Arrays.equals(expected, QemuReads.readAll(image)), "content");
            assertEquals("parent.vhd", image.info().backingFilename().orElseThrow());
            assertEquals("vpc", image.info().backingFormat().orElseThrow());
            for (Extent e : image.extents(0, SIZE)) {
                int sector = (int) (e.offset() / 512);
                VhdBuilder.Block block = b.blocks.get(sector / (b.blockSize / 512));
                int inBlock = sector % (b.blockSize / 512);
                boolean child = block != null && (block.bitmap()[inBlock >>> 3] & (0x80 >>> (inBlock & 7))) != 0;
                assertEquals(child ? 0 : 1, e.depth(), () -> "depth of " + e);
            }
        }
    }

    @Test
    void anAbsoluteW2kuNameIsFollowed(@TempDir Path dir) throws IOException {
        Qemu.require();
        byte[] expected = parent(dir);
        VhdBuilder b = child(new Random(5), expected);
        b.locators.add(VhdBuilder.Locator.w2ku(dir.resolve("parent.vhd").toString().replace('/', '\\')));
        Files.write(dir.resolve("child.vhd"), b.build());
        try (Image image = Imago.opener().path(dir.resolve("child.vhd")).open()) {
            assertTrue(Arrays.equals(expected, QemuReads.readAll(image)));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"..\\parent.vhd", "\\etc\\parent.vhd", "sub\\..\\..\\parent.vhd"})
    void aConfinedGateRefusesNamesOutsideTheDirectory(String name, @TempDir Path dir) throws IOException {
        Qemu.require();
        Path sub = Files.createDirectories(dir.resolve("sub"));
        parent(dir);
        VhdBuilder b = new VhdBuilder(SIZE);
        b.locators.add(VhdBuilder.Locator.w2ru(name));
        Files.write(sub.resolve("child.vhd"), b.build());
        assertThrows(OpenDeniedException.class, () -> Imago.opener().path(sub.resolve("child.vhd"))
                .gate(OpenGate.confinedTo(sub)).open().close());
    }

    @ParameterizedTest
    @ValueSource(strings = {"\\\\.\\PhysicalDrive0", "\\\\?\\C:\\parent.vhd", "\\\\server\\share\\parent.vhd", "a\0b"})
    void deviceAndNetworkNamesAreRefused(String name, @TempDir Path dir) throws IOException {
        VhdBuilder b = new VhdBuilder(SIZE);
        b.locators.add(VhdBuilder.Locator.w2ku(name));
        Files.write(dir.resolve("child.vhd"), b.build());
        CorruptImageException e = assertThrows(CorruptImageException.class,
                () -> Imago.opener().path(dir.resolve("child.vhd")).open().close());
        assertEquals(1536, e.offset().orElseThrow(), e.getMessage());
        assertTrue(e.getMessage().contains("child.vhd"), e.getMessage());
    }

    /** A locator stored after the blocks (QEMU would allocate over it) survives allocating writes. */
    @Test
    void locatorDataAfterTheBlocksIsNotOverwritten(@TempDir Path dir) throws IOException {
        Qemu.require();
        byte[] expected = parent(dir);
        VhdBuilder b = child(new Random(12), expected);
        byte[] built = b.build();
        byte[] name = "parent.vhd".getBytes(StandardCharsets.UTF_16LE);
        byte[] file = Arrays.copyOf(built, built.length + 512);
        System.arraycopy(name, 0, file, built.length, name.length); // after the footer that ends the blocks
        ByteBuffer h = ByteBuffer.wrap(file, 512, 1024).slice();
        h.put(576, "W2ru".getBytes(StandardCharsets.US_ASCII)).putInt(576 + 4, 512)
                .putInt(576 + 8, name.length).putLong(576 + 16, built.length);
        h.putInt(36, 0).putInt(36, VhdBuilder.checksum(file, 512, 1024));
        Path child = dir.resolve("child.vhd");
        Files.write(child, file);
        try (Image image = Imago.opener().path(child).writable(true).open()) {
            for (int block = 0; block < SIZE / b.blockSize; block++) {
                image.write(ByteBuffer.wrap(new byte[] {7}), (long) block * b.blockSize + 1000);
                expected[block * b.blockSize + 1000] = 7;
            }
        }
        try (Image image = Imago.opener().path(child).open()) {
            assertTrue(Arrays.equals(expected, QemuReads.readAll(image)));
        }
    }

    /** Writes go to the child sector by sector; the parent's bytes around a partial sector are kept. */
    @Test
    void writesFillPartialSectorsFromTheParent(@TempDir Path dir) throws IOException {
        Qemu.require();
        byte[] expected = parent(dir);
        VhdBuilder b = child(new Random(9), expected);
        b.locators.add(VhdBuilder.Locator.w2ru(".\\parent.vhd"));
        Path child = dir.resolve("child.vhd");
        Files.write(child, b.build());
        Random r = new Random(10);
        try (Image image = Imago.opener().path(child).writable(true).open()) {
            for (int i = 0; i < 40; i++) {
                int off = r.nextInt((int) SIZE - 1);
                int len = 1 + r.nextInt(Math.min(70_000, (int) SIZE - off));
                byte[] data = new byte[len];
                r.nextBytes(data);
                image.write(ByteBuffer.wrap(data), off);
                System.arraycopy(data, 0, expected, off, len);
            }
            assertTrue(Arrays.equals(expected, QemuReads.readAll(image)), "before reopening");
        }
        try (Image image = Imago.opener().path(child).open()) {
            assertTrue(Arrays.equals(expected, QemuReads.readAll(image)), "after reopening");
        }
        VhdiInfo.run(dir, child);
    }
}
