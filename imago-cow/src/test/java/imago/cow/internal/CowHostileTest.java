package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.Preallocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Damaged and hostile headers: each a clear exception with the file and offset, never a guess. */
class CowHostileTest {
    private final CowFormatDriver driver = new CowFormatDriver();

    private FormatInstance open(byte[] file) throws IOException {
        MemoryStorage s = MemoryStorage.of(CowTestSupport.name("hostile"), file);
        return driver.open(s, OpenContext.of(false));
    }

    private <T extends ImageException> T refused(Class<T> type, byte[] file, long offset) {
        T e = assertThrows(type, () -> open(file).close());
        assertTrue(e.resource().startsWith("memory:hostile"), e.getMessage());
        if (offset >= 0) {
            assertEquals(offset, e.offset().orElse(-1), e.getMessage());
        }
        return e;
    }

    private static byte[] image(CowImages.Spec spec) {
        return CowImages.image(spec, new BitSet(), new byte[0]);
    }

    private static byte[] patch(byte[] file, ByteOrder order, int at, long value, int width) {
        ByteBuffer b = ByteBuffer.wrap(file).order(order);
        if (width == 8) {
            b.putLong(at, value);
        } else {
            b.putInt(at, (int) value);
        }
        return file;
    }

    @Test
    void nameWithoutNulIsCorrupt() {
        byte[] q = image(CowImages.Spec.of(CowVariant.QEMU_V2, "", 4096));
        Arrays.fill(q, 8, 8 + 1024, (byte) 'a');
        refused(CorruptImageException.class, q, 8);
        byte[] v1 = image(CowImages.Spec.of(CowVariant.UML_V1, "", 4096));
        Arrays.fill(v1, 8, 8 + 256, (byte) 'a');
        refused(CorruptImageException.class, v1, 8);
        byte[] v3 = image(CowImages.Spec.of(CowVariant.UML_V3, "x", 4096));
        Arrays.fill(v3, 32, 32 + 4096, (byte) 'a');
        refused(CorruptImageException.class, v3, 32);
        byte[] v2 = image(CowImages.Spec.of(CowVariant.UML_V2, "x", 4096));
        Arrays.fill(v2, 8, 8 + 4096, (byte) 'a');
        refused(CorruptImageException.class, v2, -1);
    }

    @Test
    void sizeWithTheTopBitSetIsCorrupt() {
        byte[] q = patch(image(CowImages.Spec.of(CowVariant.QEMU_V2, "b", 4096)), ByteOrder.BIG_ENDIAN, 1040, -4096L, 8);
        refused(CorruptImageException.class, q, 1040);
        byte[] v3 = patch(image(CowImages.Spec.of(CowVariant.UML_V3, "b", 4096)), ByteOrder.BIG_ENDIAN, 12, -1L, 8);
        refused(CorruptImageException.class, v3, -1);
    }

    @Test
    void sizeWhoseDataWouldOverflowIsCorrupt() {
        byte[] v3 = patch(image(CowImages.Spec.of(CowVariant.UML_V3, "b", 4096)), ByteOrder.BIG_ENDIAN, 12,
                Long.MAX_VALUE - 10, 8);
        refused(CorruptImageException.class, v3, -1);
    }

    @Test
    void qemuSectorSizeOtherThan512IsCorrupt() {
        byte[] q = patch(image(CowImages.Spec.of(CowVariant.QEMU_V2, "b", 4096)), ByteOrder.BIG_ENDIAN, 1048, 1024, 4);
        CorruptImageException e = refused(CorruptImageException.class, q, 1048);
        assertTrue(e.getMessage().contains("512"), e.getMessage());
    }

    @Test
    void umlSectorSizeMustBeAPowerOfTwo() {
        for (long ss : new long[] {0, 3, 100, 1000, -512, 1 << 20}) {
            byte[] v3 = patch(image(CowImages.Spec.of(CowVariant.UML_V3, "b", 4096)), ByteOrder.BIG_ENDIAN, 20, ss, 4);
            refused(CorruptImageException.class, v3, 20);
            byte[] v1 = patch(image(CowImages.Spec.of(CowVariant.UML_V1, "b", 4096)), ByteOrder.BIG_ENDIAN, 276, ss, 4);
            refused(CorruptImageException.class, v1, 276);
        }
    }

    @Test
    void alignmentZeroOrNotAPowerOfTwoIsCorrupt() {
        for (long a : new long[] {0, 3, 1000, -4096, 1L << 31}) {
            byte[] v3 = patch(image(CowImages.Spec.of(CowVariant.UML_V3, "b", 4096)), ByteOrder.BIG_ENDIAN, 24, a, 4);
            refused(CorruptImageException.class, v3, 24);
            byte[] broken = patch(image(CowImages.Spec.of(CowVariant.UML_V3_BROKEN, "b", 4096)), ByteOrder.BIG_ENDIAN,
                    28, a, 4);
            refused(CorruptImageException.class, broken, 28);
        }
    }

    @Test
    void unknownCowFormatIsCorrupt() {
        byte[] v3 = patch(image(CowImages.Spec.of(CowVariant.UML_V3, "b", 4096)), ByteOrder.BIG_ENDIAN, 28, 1, 4);
        refused(CorruptImageException.class, v3, 28);
    }

    @Test
    void fileShorterThanItsBitmapIsCorrupt() {
        byte[] q = patch(image(CowImages.Spec.of(CowVariant.QEMU_V2, "b", 4096)), ByteOrder.BIG_ENDIAN, 1040,
                1L << 40, 8);
        CorruptImageException e = refused(CorruptImageException.class, q, 1056);
        assertTrue(e.getMessage().contains("shorter than its"), e.getMessage());
        byte[] v3 = image(CowImages.Spec.of(CowVariant.UML_V3, "b", 1 << 24));
        refused(CorruptImageException.class, Arrays.copyOf(v3, 4128 + 100), 4608);
        byte[] v1 = image(CowImages.Spec.of(CowVariant.UML_V1, "b", 1 << 24));
        refused(CorruptImageException.class, Arrays.copyOf(v1, 300), 280);
    }

    @Test
    void truncatedHeadersAreCorrupt() {
        for (CowVariant v : CowVariant.values()) {
            byte[] full = image(CowImages.Spec.of(v, "b", 4096));
            for (int n : new int[] {8, 100, 279, 1047, 1055, 4119, 4127, 4135}) {
                if (n < full.length && n < CowImages.Spec.of(v, "b", 4096).headerLength()) {
                    refused(CorruptImageException.class, Arrays.copyOf(full, n), -1);
                }
            }
        }
    }

    @Test
    void aBitmapOverTheLimitIsRefusedWithoutAllocatingIt() throws IOException {
        long size = 5L << 40; // 5 TiB: a 1.25 GiB bitmap
        byte[] head = patch(image(CowImages.Spec.of(CowVariant.QEMU_V2, "b", 512)), ByteOrder.BIG_ENDIAN, 1040, size, 8);
        MemoryStorage s = MemoryStorage.of(CowTestSupport.name("hostile"), head);
        s.resize(1056 + size / 4096, Preallocation.OFF);
        ImageLimitException e = assertThrows(ImageLimitException.class, () -> driver.open(s, OpenContext.of(false)));
        assertEquals(1056, e.offset().orElse(-1));
    }

    @Test
    void version2LayoutsAreToldApartByTheFile() throws IOException {
        // a 32-bit QEMU header of 512 bytes: read as the 64-bit layout, its size is 0x200_00000200, whose
        // bitmap does not fit the file, so only the 32-bit reading is left
        byte[] f = new byte[1048 + 1];
        ByteBuffer.wrap(f).order(ByteOrder.BIG_ENDIAN).putInt(0, CowHeader.MAGIC).putInt(4, 2).putLong(1036, 512)
                .putInt(1044, 512);
        try (FormatInstance i = open(f)) {
            assertEquals("qemu-v2-32bit", i.formatSpecific().get("variant"));
        }
    }

    @Test
    void ambiguousVersion2IsCorruptNotAGuess() {
        // a 64-bit QEMU header of size 512 also reads as a 32-bit one of size 0 (pad 0, then the size's
        // high word; its low word 512 where the 32-bit layout has the sector size). QEMU left its file
        // as long as header and bitmap (1057 bytes for the 64-bit reading, 1048 for the 32-bit one); a
        // file of 1300 bytes fits neither writer, so neither reading is taken
        byte[] f = new byte[1300];
        ByteBuffer.wrap(f).order(ByteOrder.BIG_ENDIAN).putInt(0, CowHeader.MAGIC).putInt(4, 2).putLong(1040, 512)
                .putInt(1048, 512);
        CorruptImageException e = refused(CorruptImageException.class, f, 0);
        assertTrue(e.getMessage().contains("ambiguous"), e.getMessage());
        // as QEMU left it, it is the 64-bit one
        try (FormatInstance i = open(Arrays.copyOf(f, 1057))) {
            assertEquals("qemu-v2", i.formatSpecific().get("variant"));
        } catch (IOException x) {
            fail(x);
        }
    }

    @Test
    void v3WithAnEmptyNameIsToldFromBrokenByItsFields() throws IOException {
        byte[] v3 = image(CowImages.Spec.of(CowVariant.UML_V3, "", 8192));
        try (FormatInstance i = open(v3)) {
            assertEquals("uml-v3", i.formatSpecific().get("variant"));
            assertTrue(i.dependencies().isEmpty());
        }
        byte[] broken = image(CowImages.Spec.of(CowVariant.UML_V3_BROKEN, "", 8192));
        try (FormatInstance i = open(broken)) {
            assertEquals("uml-v3-broken", i.formatSpecific().get("variant"));
        }
    }

    @Test
    void randomHeadersNeverFailOtherwise() {
        SplittableRandom r = new SplittableRandom(99);
        for (int i = 0; i < 3000; i++) {
            int version = 1 + r.nextInt(3);
            byte[] f = CowTestSupport.random(r, 4136 + r.nextInt(8192));
            ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.BIG_ENDIAN).putInt(0, CowHeader.MAGIC).putInt(4, version);
            // make some fields plausible so that parsing gets further
            if (r.nextBoolean()) {
                f[8 + r.nextInt(200)] = 0;
                f[36 + r.nextInt(200)] = 0;
            }
            if (r.nextBoolean()) {
                b.putInt(1048, 512).putInt(1044, 512).putInt(4116, 512).putInt(20, 512).putInt(24, 512).putInt(276, 512);
                b.putInt(28, 0).putInt(32, r.nextInt(2));
            }
            if (r.nextBoolean()) {
                long size = r.nextLong(1 << 20);
                b.putLong(1040, size).putLong(1036, size).putLong(4108, size).putLong(12, size).putLong(268, size);
            }
            try {
                open(f).close();
            } catch (CorruptImageException | ImageLimitException expected) {
                assertTrue(expected.getMessage().startsWith("memory:hostile"), expected.getMessage());
            } catch (IOException | RuntimeException e) {
                throw new AssertionError("header " + i + " failed with " + e, e);
            }
        }
    }

    @Test
    void umlSectorsWithoutABitReadFromBelowAndRefuseWrites() throws IOException {
        // UML v2 with 3905 sectors: its bitmap is 488 bytes, ending exactly at a sector boundary, so the
        // last sector's bit has no room
        long size = 3905L * 512;
        CowImages.Spec spec = CowImages.Spec.of(CowVariant.UML_V2, CowTestSupport.name("nobit-base"), size);
        assertEquals(3904, spec.bitCapacity());
        SplittableRandom r = new SplittableRandom(1);
        byte[] backing = CowTestSupport.random(r, (int) size);
        CowTestSupport.backing(spec.backing(), backing);
        String name = CowTestSupport.name("nobit");
        BitSet all = new BitSet();
        all.set(0, 3904);
        byte[] data = CowTestSupport.random(r, (int) size);
        byte[] expected = CowTestSupport.cow(name, spec, all, data, backing);
        try (Image image = CowTestSupport.open(name, true)) {
            assertArrayEquals(expected, CowTestSupport.readAll(image));
            assertThrows(UnsupportedFeatureException.class, () -> image.write(ByteBuffer.allocate(1), size - 1));
            image.write(ByteBuffer.allocate(512), size - 1024);
        }
    }

    @Test
    void badCheckBackingOptionIsRefused() {
        byte[] q = image(CowImages.Spec.of(CowVariant.QEMU_V2, "", 4096));
        MemoryStorage s = MemoryStorage.of(CowTestSupport.name("hostile"), q);
        assertThrows(IllegalArgumentException.class, () -> driver.open(s,
                new OpenContext(false, false, Map.of("cow.check-backing", "maybe"))));
    }
}
