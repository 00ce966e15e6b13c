package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Differencing disks (which qemu-img cannot open; the test builds them): a fully present block reads from the child,
 * a partially present one sector by sector by its chunk's sector bitmap, a zero block as zeroes, a not present one
 * from the parent, which is opened through the open gate by the locator's name; names the gate refuses, or that are
 * device, UNC or absolute paths in {@code relative_path}, are refused.
 */
class VhdxDifferencingTest {
    static final long MIB = 1 << 20;
    static final long SIZE = 4 * MIB;

    /** A 4 MiB parent of 0x11 bytes, written by imago. */
    static void parent(Path p) throws IOException {
        Imago.create(p, "vhdx", CreateOptions.builder().size(SIZE).option("block_size", "1M").build());
        try (Image image = Imago.opener().path(p).writable(true).open()) {
            byte[] all = new byte[(int) SIZE];
            Arrays.fill(all, (byte) 0x11);
            image.write(ByteBuffer.wrap(all), 0);
        }
    }

    /** The sectors of block 1 the child holds. */
    static boolean childSector(long sector) {
        return sector < 8 || sector >= 100 && sector < 108;
    }

    /**
     * A differencing child of 4 MiB (1 MiB blocks): block 0 fully present (0xaa), block 1 partially present (0xbb in
     * the sectors {@link #childSector} names), block 2 zero, block 3 not present; the locator has {@code locator}.
     */
    static void child(Path c, Map<String, String> locator) throws IOException {
        Imago.create(c, "vhdx", CreateOptions.builder().size(SIZE).option("block_size", "1M").build());
        byte[] f = Files.readAllBytes(c);
        long meta = 3 * MIB;
        ByteBuffer b = ByteBuffer.allocate((int) (f.length + 3 * MIB)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(0, f);
        // metadata: has-parent flag, a sixth item (the locator) after the others
        int params = (int) meta + VhdxMetadata.TABLE_LENGTH;
        b.putInt(params + 4, 2);
        b.putShort((int) meta + 10, (short) 6);
        int e = (int) meta + 32 + 32 * 5;
        VhdxFields.putGuid(b, e, VhdxFields.PARENT_LOCATOR);
        byte[] loc = locator(locator);
        b.putInt(e + 16, VhdxMetadata.TABLE_LENGTH + 64);
        b.putInt(e + 20, loc.length);
        b.putInt(e + 24, 4 | 2);
        b.put(params + 64, loc);
        // BAT: the chunk's sector bitmap at the old end, block 0 and block 1 after it
        long bitmap = f.length;
        long block0 = bitmap + MIB;
        long block1 = block0 + MIB;
        int bat = (int) (2 * MIB);
        b.putLong(bat, VhdxBat.entry(VhdxFields.FULLY_PRESENT, block0));
        b.putLong(bat + 8, VhdxBat.entry(VhdxFields.PARTIALLY_PRESENT, block1));
        b.putLong(bat + 16, VhdxFields.ZERO);
        b.putLong(bat + 24, VhdxFields.NOT_PRESENT);
        b.putLong(bat + 8 * 4096, VhdxBat.entry(VhdxFields.BITMAP_PRESENT, bitmap));
        for (long s = 0; s < 2048; s++) {
            if (childSector(s)) {
                long bit = 2048 + s;
                int at = (int) (bitmap + bit / 8);
                b.put(at, (byte) (b.get(at) | 1 << (bit % 8)));
            }
        }
        for (int i = 0; i < MIB; i++) {
            b.put((int) block0 + i, (byte) 0xaa);
            b.put((int) block1 + i, (byte) 0xbb);
        }
        Files.write(c, b.array());
    }

    static byte[] locator(Map<String, String> kv) {
        List<byte[]> strings = new ArrayList<>();
        kv.forEach((k, v) -> {
            strings.add(k.getBytes(StandardCharsets.UTF_16LE));
            strings.add(v.getBytes(StandardCharsets.UTF_16LE));
        });
        int at = 20 + 12 * kv.size();
        ByteBuffer b = ByteBuffer.allocate(at + strings.stream().mapToInt(s -> s.length).sum())
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        VhdxFields.putGuid(b, 0, VhdxFields.VHDX_PARENT_LOCATOR_TYPE);
        b.putShort(18, (short) kv.size());
        for (int i = 0; i < kv.size(); i++) {
            byte[] key = strings.get(2 * i);
            byte[] value = strings.get(2 * i + 1);
            b.putInt(20 + 12 * i, at);
            b.putShort(20 + 12 * i + 8, (short) key.length);
            b.put(at, key);
            at += key.length;
            b.putInt(20 + 12 * i + 4, at);
            b.putShort(20 + 12 * i + 10, (short) value.length);
            b.put(at, value);
            at += value.length;
        }
        return b.array();
    }

    static byte[] expected() {
        byte[] out = new byte[(int) SIZE];
        Arrays.fill(out, 0, (int) MIB, (byte) 0xaa);
        for (int s = 0; s < 2048; s++) {
            Arrays.fill(out, (int) MIB + 512 * s, (int) MIB + 512 * (s + 1), (byte) (childSector(s) ? 0xbb : 0x11));
        }
        Arrays.fill(out, (int) (3 * MIB), (int) SIZE, (byte) 0x11);
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"relative_path=p.vhdx", "relative_path=.\\p.vhdx", "absolute_win32_path=C:\\vms\\p.vhdx",
        "parent_linkage={83ba1a1d-0d9e-4d3b-a1d4-8d5ec9d5f3e1};relative_path=p.vhdx;volume_path=\\\\?\\Volume{x}\\p"})
    void readsFromTheChildTheBitmapAndTheParent(String entries, @TempDir Path dir) throws IOException {
        parent(dir.resolve("p.vhdx"));
        Map<String, String> kv = new LinkedHashMap<>();
        for (String pair : entries.split(";")) {
            kv.put(pair.substring(0, pair.indexOf('=')), pair.substring(pair.indexOf('=') + 1));
        }
        child(dir.resolve("c.vhdx"), kv);
        try (Image image = Imago.opener().path(dir.resolve("c.vhdx")).gate(OpenGate.confinedTo(dir)).open()) {
            assertTrue(image.backing().isPresent(), "the parent is opened");
            assertArrayEquals(expected(), QemuReads.readAll(image));
            // the extents: data in the child, the parent's (depth 1) where the child falls through
            assertEquals(0, image.extent(0, SIZE).depth());
            assertEquals(1, image.extent(3 * MIB, MIB).depth());
            assertEquals(1, image.extent(MIB + 8 * 512, MIB).depth());
        }
    }

    @Test
    void aConfinedGateRefusesAParentOutsideTheDirectory(@TempDir Path dir) throws IOException {
        Path sub = Files.createDirectories(dir.resolve("sub"));
        parent(dir.resolve("p.vhdx"));
        child(sub.resolve("c.vhdx"), Map.of("relative_path", "..\\p.vhdx"));
        assertThrows(OpenDeniedException.class, () -> Imago.opener().path(sub.resolve("c.vhdx"))
                .gate(OpenGate.confinedTo(sub)).open().close());
        try (Image image = Imago.opener().path(sub.resolve("c.vhdx")).open()) { // the permissive default finds it
            assertArrayEquals(expected(), QemuReads.readAll(image));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"relative_path=/etc/passwd", "relative_path=C:\\p.vhdx", "relative_path=\\\\server\\s\\p",
        "absolute_win32_path=\\\\.\\PhysicalDrive0", "absolute_win32_path=\\\\?\\GLOBALROOT\\Device\\x",
        "volume_path=\\\\?\\Volume{0}\\p.vhdx"})
    void deviceAbsoluteAndNetworkNamesAreRefused(String entry, @TempDir Path dir) throws IOException {
        parent(dir.resolve("p.vhdx"));
        child(dir.resolve("c.vhdx"), Map.of(entry.substring(0, entry.indexOf('=')),
                entry.substring(entry.indexOf('=') + 1)));
        ImageException e = assertThrows(ImageException.class, () -> Imago.opener().path(dir.resolve("c.vhdx"))
                .open().close());
        assertTrue(e.getMessage().contains("c.vhdx"), e.getMessage());
    }

    @Test
    void differencingDisksAreReadOnly(@TempDir Path dir) throws IOException {
        parent(dir.resolve("p.vhdx"));
        child(dir.resolve("c.vhdx"), Map.of("relative_path", "p.vhdx"));
        try (Image image = Imago.opener().path(dir.resolve("c.vhdx")).writable(true).open()) {
            assertThrows(UnsupportedFeatureException.class, () -> image.write(ByteBuffer.allocate(512), 0));
        }
    }
}
