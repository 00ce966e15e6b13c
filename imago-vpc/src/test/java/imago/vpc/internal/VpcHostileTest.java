package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import imago.testkit.HostileImages;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Hostile and damaged images built by the tests: each is refused with one specific exception that names the file
 * and the offset of the field at fault, in bounded time and memory.
 */
class VpcHostileTest {
    private static final AtomicInteger NAMES = new AtomicInteger();

    /** A small valid dynamic disk (4 KiB blocks, two allocated) to damage. */
    static VhdBuilder dynamic() {
        VhdBuilder b = new VhdBuilder(64 << 10);
        b.diskType = 3;
        b.blockSize = 4096;
        byte[] full = new byte[512];
        Arrays.fill(full, (byte) 0xFF);
        byte[] data = new byte[4096];
        Arrays.fill(data, (byte) 0x5A);
        b.blocks.put(1, new VhdBuilder.Block(full, data));
        b.blocks.put(3, new VhdBuilder.Block(full, data));
        return b;
    }

    /** Opens {@code bytes} as vpc (writable or not) and returns what it threw. */
    static <T extends ImageException> T refused(Class<T> type, byte[] bytes, boolean writable) {
        return HostileImages.refused("vpc", type, bytes, writable);
    }

    static byte[] patched(VhdBuilder b, Consumer<ByteBuffer> patch) {
        byte[] bytes = b.build();
        patch.accept(ByteBuffer.wrap(bytes));
        return bytes;
    }

    /** Sets the header's field at {@code at} and its checksum. */
    static Consumer<ByteBuffer> header(Consumer<ByteBuffer> change) {
        return buf -> {
            ByteBuffer h = buf.slice(512, 1024);
            change.accept(h);
            h.putInt(36, 0);
            h.putInt(36, VhdBuilder.checksum(buf.array(), 512, 1024));
        };
    }

    @Test
    void theBuilderMakesAValidImage() throws IOException {
        String name = "valid-" + NAMES.incrementAndGet();
        MemoryStorage.of(name, dynamic().build()).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(name)).open()) {
            byte[] all = QemuReads.readAll(image);
            assertEquals(0x5A, all[4096]);
            assertEquals(0, all[8191 + 1]);
        } finally {
            MemoryStorage.delete(name);
        }
    }

    @Test
    void badFooterChecksums() {
        byte[] bytes = patched(dynamic(), buf -> buf.put(70, (byte) 1));
        assertEquals(64, refused(CorruptImageException.class, bytes, false).offset().orElseThrow());
        byte[] fixed = new byte[8192 + 512];
        VhdBuilder f = new VhdBuilder(8192);
        f.diskType = 2;
        System.arraycopy(f.footer(-1), 0, fixed, 8192, 512);
        fixed[8192 + 100] = 7;
        assertEquals(8192 + 64, refused(CorruptImageException.class, fixed, false).offset().orElseThrow());
    }

    @Test
    void notAVhdAndTooSmall() {
        byte[] junk = new byte[4096];
        new Random(1).nextBytes(junk);
        refused(CorruptImageException.class, junk, false);
        assertEquals(0, refused(CorruptImageException.class, new byte[100], false).offset().orElseThrow());
    }

    @Test
    void headerOutsideTheFileOrWithoutItsCookie() {
        VhdBuilder b = dynamic();
        byte[] outside = b.build();
        ByteBuffer f = ByteBuffer.wrap(outside, 0, 512).slice();
        f.putLong(16, 1L << 40).putInt(64, 0).putInt(64, VhdBuilder.checksum(outside, 0, 512));
        // past the end of the file the header reads as zeroes, as in QEMU: no magic there
        CorruptImageException past = refused(CorruptImageException.class, outside, false);
        assertTrue(past.getMessage().contains("Invalid header magic"), past.getMessage());
        byte[] cookie = patched(b, buf -> buf.put(512, (byte) 'X'));
        assertEquals(512, refused(CorruptImageException.class, cookie, false).offset().orElseThrow());
    }

    @Test
    void absurdBlockSizes() {
        for (int bs : new int[] {0, 256, 3 << 20, 4097, -1}) {
            byte[] bytes = patched(dynamic(), header(h -> h.putInt(32, bs)));
            CorruptImageException e = refused(CorruptImageException.class, bytes, false);
            assertEquals(512 + 32, e.offset().orElseThrow(), e.getMessage());
            assertTrue(e.getMessage().contains("Invalid block size"), e.getMessage());
        }
        // 2 GiB blocks: the two allocated ones end far past the end of the file
        byte[] huge = patched(dynamic(), header(h -> h.putInt(32, 1 << 31)));
        assertTrue(refused(CorruptImageException.class, huge, false).getMessage().contains("truncated"));
    }

    @Test
    void absurdTableSizes() {
        byte[] small = patched(dynamic(), header(h -> h.putInt(28, 3)));
        assertTrue(refused(CorruptImageException.class, small, false).getMessage().contains("Page table too small"));
        for (int entries : new int[] {0x7FFF_FFFF, 1 << 29, -1}) {
            byte[] huge = patched(dynamic(), header(h -> h.putInt(28, entries)));
            assertEquals(512 + 28, refused(ImageLimitException.class, huge, false).offset().orElseThrow());
        }
        // within QEMU's limit, but the table would reach past the end of the file
        byte[] past = patched(dynamic(), header(h -> h.putInt(28, 1 << 24)));
        assertTrue(refused(CorruptImageException.class, past, false).getMessage().contains("BAT"));
        byte[] offset = patched(dynamic(), header(h -> h.putLong(16, Long.MAX_VALUE - 8)));
        refused(CorruptImageException.class, offset, false);
    }

    @Test
    void batEntriesPastTheEndOfTheFile() {
        VhdBuilder b = dynamic();
        byte[] bytes = b.build();
        long bat = ByteBuffer.wrap(bytes).getLong(512 + 16);
        ByteBuffer.wrap(bytes).putInt((int) bat + 4 * 3, 0x0FFF_FFFF);
        CorruptImageException e = refused(CorruptImageException.class, bytes, false);
        assertEquals(bat + 12, e.offset().orElseThrow(), e.getMessage());
    }

    @Test
    void truncatedFiles() {
        byte[] whole = dynamic().build();
        for (int cut : new int[] {whole.length - 1100, whole.length - 5000, 1000, 600}) {
            refused(ImageException.class, Arrays.copyOf(whole, cut), false);
        }
    }

    @Test
    void sizesPast2040GiB() {
        byte[] bytes = dynamic().build();
        ByteBuffer f = ByteBuffer.wrap(bytes, 0, 512).slice();
        f.putLong(48, 2041L << 30).putInt(64, 0).putInt(64, VhdBuilder.checksum(bytes, 0, 512));
        assertEquals(48, refused(ImageLimitException.class, bytes, false).offset().orElseThrow());
    }

    @Test
    void overlappingBlocksAreReadButNotWritten() throws IOException {
        VhdBuilder b = dynamic();
        byte[] bytes = b.build();
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        long bat = buf.getLong(512 + 16);
        buf.putInt((int) bat + 4 * 3, buf.getInt((int) bat + 4)); // block 3 is block 1
        assertTrue(refused(CorruptImageException.class, bytes, true).getMessage().contains("overlapping"));
        buf.putInt((int) bat + 4 * 3, VpcFields.UNUSED);
        buf.putInt((int) bat + 4, 1); // block 1 over the header (and nothing else)
        assertTrue(refused(CorruptImageException.class, bytes, true).getMessage().contains("overlaps metadata"));
        assertEquals(64 << 10, HostileImages.accepted("vpc", bytes, false).length, "read-only, it reads as QEMU reads it");
    }

    @Test
    void hostileParentLocators() {
        VhdBuilder b = dynamic();
        b.diskType = 4;
        b.locators.add(new VhdBuilder.Locator("W2ru", "p.vhd".getBytes(StandardCharsets.UTF_16LE)));
        byte[] bytes = b.build();
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        buf.putLong(512 + 576 + 16, 1L << 40); // data past the end of the file
        buf.putInt(512 + 36, 0).putInt(512 + 36, VhdBuilder.checksum(bytes, 512, 1024));
        assertEquals(512 + 576 + 16, refused(CorruptImageException.class, bytes, false).offset().orElseThrow());
        buf.putLong(512 + 576 + 16, 1536).putInt(512 + 576 + 8, 1 << 30); // a gigabyte of name
        buf.putInt(512 + 36, 0).putInt(512 + 36, VhdBuilder.checksum(bytes, 512, 1024));
        assertEquals(512 + 576 + 8, refused(ImageLimitException.class, bytes, false).offset().orElseThrow());
        VhdBuilder odd = dynamic();
        odd.diskType = 4;
        odd.locators.add(new VhdBuilder.Locator("W2ru", new byte[] {0x41})); // half a UTF-16 unit
        refused(CorruptImageException.class, odd.build(), false);
        VhdBuilder none = dynamic();
        none.diskType = 4;
        refused(CorruptImageException.class, none.build(), false);
    }
}
