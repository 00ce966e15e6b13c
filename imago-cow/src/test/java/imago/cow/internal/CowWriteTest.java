package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.CreateOptions;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import imago.api.spi.OpenContext;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Writes through the generic path: copy-on-write of partial sectors, bitmap updates, reopening. */
class CowWriteTest {

    /** Random writes, zero writes and discards on an image of each variant, against a byte-array model. */
    @ParameterizedTest
    @EnumSource(CowVariant.class)
    void randomWritesRoundTripForEveryVariant(CowVariant variant) throws Exception {
        boolean qemu = variant == CowVariant.QEMU_V2 || variant == CowVariant.QEMU_V2_32BIT;
        long size = qemu ? 300 * 512 : 300 * 512 + 77;
        roundTrip(CowImages.Spec.of(variant, "", size), variant.ordinal() * 31L + 7);
    }

    /** UML's other sector sizes (copy-on-write in whole sectors of that size) and v1's byte orders. */
    @Test
    void randomWritesRoundTripForUmlSectorSizesAndByteOrders() throws Exception {
        roundTrip(CowImages.Spec.of(CowVariant.UML_V2, "", 200_000).withSectorSize(4096), 1);
        roundTrip(CowImages.Spec.of(CowVariant.UML_V3, "", 200_001).withSectorSize(1024).withAlignment(8192), 2);
        roundTrip(CowImages.Spec.of(CowVariant.UML_V3_BROKEN, "", 99_999).withSectorSize(2048), 3);
        roundTrip(CowImages.Spec.of(CowVariant.UML_V1, "", 150_000).withOrder(ByteOrder.LITTLE_ENDIAN), 4);
        roundTrip(CowImages.Spec.of(CowVariant.UML_V1, "", 150_000).withSectorSize(8192), 5);
    }

    private static void roundTrip(CowImages.Spec template, long seed) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        long size = template.size();
        String base = CowTestSupport.name("rt-base");
        CowImages.Spec spec = new CowImages.Spec(template.variant(), template.v1Order(), base, template.mtime(), size,
                template.sectorSize(), template.alignment());
        byte[] backing = CowTestSupport.random(r, (int) size - 1000); // shorter: the rest reads as zeroes
        CowTestSupport.backing(base, backing);
        BitSet present = CowTestSupport.randomBits(r, spec.bitCapacity());
        String name = CowTestSupport.name("rt");
        byte[] model = CowTestSupport.cow(name, spec, present, CowTestSupport.random(r, (int) size), backing);
        byte[] header = CowImages.header(spec);
        try (Image image = CowTestSupport.open(name, true)) {
            randomOps(image, model, r, 300, spec.bitCapacity() * spec.sectorSize());
        }
        byte[] file = fileBytes(name);
        assertArrayEquals(header, Arrays.copyOf(file, header.length), "the header is unchanged");
        try (Image image = CowTestSupport.open(name, false)) {
            assertArrayEquals(model, CowTestSupport.readAll(image));
            assertEquals(spec.variant().displayName(), image.info().formatSpecific().get("variant"));
            assertEquals(spec.sectorSize(), image.info().formatSpecific().get("sector-size"));
        }
        // the on-disk bitmap matches what reads show: every bit set has its data behind it
        checkDiskBitmapConsistent(name, spec, model, backing);
    }

    static void randomOps(Image image, byte[] model, SplittableRandom r, int steps) throws IOException {
        randomOps(image, model, r, steps, model.length);
    }

    /** Writes a mix of operations, checking reads as it goes. */
    static void randomOps(Image image, byte[] model, SplittableRandom r, int steps, long writable)
            throws IOException {
        int size = model.length;
        for (int i = 0; i < steps; i++) {
            int off = pick(r, size);
            int len = Math.min(size - off, r.nextInt(4) == 0 ? r.nextInt(20_000) : r.nextInt(1100));
            if (off + len > writable) {
                len = (int) Math.min(len, writable);
                off = (int) (writable - len); // UML v1/v2 sectors without a bit refuse writes
            }
            switch (r.nextInt(6)) {
                case 0, 1, 2 -> {
                    byte[] d = CowTestSupport.random(r, len);
                    image.write(ByteBuffer.wrap(d), off);
                    System.arraycopy(d, 0, model, off, len);
                }
                case 3 -> {
                    image.writeZeroes(off, len, r.nextBoolean() ? Set.of(ZeroFlag.MAY_UNMAP) : Set.of());
                    Arrays.fill(model, off, off + len, (byte) 0);
                }
                case 4 -> image.discard(off, len);
                default -> {
                    ByteBuffer b = ByteBuffer.allocate(len);
                    image.read(b, off);
                    assertArrayEquals(Arrays.copyOfRange(model, off, off + len), b.array(), "read at " + off);
                }
            }
        }
        assertArrayEquals(model, CowTestSupport.readAll(image));
    }

    /** Offsets near sector and bitmap-byte boundaries, or anywhere. */
    static int pick(SplittableRandom r, int size) {
        if (size == 0) {
            return 0;
        }
        int off = switch (r.nextInt(3)) {
            case 0 -> r.nextInt(size);
            case 1 -> r.nextInt(size / 512 + 1) * 512;
            default -> r.nextInt(size / 4096 + 1) * 4096 + r.nextInt(-3, 4);
        };
        return Math.max(0, Math.min(size - 1, off));
    }

    static byte[] fileBytes(String name) throws IOException {
        try (MemoryStorage s = MemoryStorage.open(name, false)) {
            ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(s.size()));
            s.read(b, 0);
            return b.array();
        }
    }

    /** Every sector whose on-disk bit is set holds the model's bytes; every clear one matches the backing. */
    static void checkDiskBitmapConsistent(String name, CowImages.Spec spec, byte[] model, byte[] backing)
            throws IOException {
        byte[] file = fileBytes(name);
        for (long n = 0; n < spec.bitCapacity(); n++) {
            boolean bit = (file[(int) (spec.bitmapOffset() + n / 8)] & (1 << (n % 8))) != 0;
            int from = (int) (n * spec.sectorSize());
            int len = Math.min(spec.sectorSize(), model.length - from);
            byte[] expected = Arrays.copyOfRange(model, from, from + len);
            byte[] actual;
            if (bit) {
                int host = (int) (spec.dataOffset() + from);
                actual = Arrays.copyOfRange(file, host, host + len);
            } else {
                actual = new byte[len];
                int b = Math.max(0, Math.min(len, backing.length - from));
                if (b > 0) {
                    System.arraycopy(backing, from, actual, 0, b);
                }
            }
            assertArrayEquals(expected, actual, "sector " + n + (bit ? " (present)" : " (absent)"));
        }
    }

    @Test
    void createdQemuImageHasQemusLayoutAndRoundTrips() throws Exception {
        SplittableRandom r = new SplittableRandom(11);
        String base = CowTestSupport.name("create-base");
        byte[] backing = CowTestSupport.random(r, 1_000_000); // not a multiple of 512: QEMU rounds up
        CowTestSupport.backing(base, backing);
        String name = CowTestSupport.name("create-qemu");
        Imago.create(StorageLocation.memory(name), "cow", CreateOptions.builder().backingFile(base)
                .size(backing.length).option("backing_mtime", "1700000000").build());
        byte[] file = fileBytes(name);
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.BIG_ENDIAN);
        long size = 1_000_448; // rounded up to sectors
        assertEquals(0x4F4F4F4D, b.getInt(0));
        assertEquals(2, b.getInt(4));
        assertEquals(base, new String(file, 8, base.length(), StandardCharsets.US_ASCII));
        assertEquals(0, file[8 + base.length()]);
        assertEquals(1_700_000_000, Integer.toUnsignedLong(b.getInt(1032)));
        assertEquals(0, b.getInt(1036));
        assertEquals(size, b.getLong(1040));
        assertEquals(512, b.getInt(1048));
        assertEquals(1056 + (size / 512 + 7) / 8, file.length, "QEMU truncates to header + bitmap");
        byte[] model = Arrays.copyOf(backing, (int) size);
        try (Image image = CowTestSupport.open(name, true)) {
            assertEquals(size, image.size());
            assertEquals("qemu-v2", image.info().formatSpecific().get("variant"));
            assertEquals(1_700_000_000L, image.info().formatSpecific().get("backing-mtime"));
            assertArrayEquals(model, CowTestSupport.readAll(image));
            randomOps(image, model, r, 200);
        }
        try (Image image = CowTestSupport.open(name, false)) {
            assertArrayEquals(model, CowTestSupport.readAll(image));
        }
        checkDiskBitmapConsistent(name, CowImages.Spec.of(CowVariant.QEMU_V2, base, size), model, backing);
    }

    @Test
    void createdUmlV3ImageHasUmlsLayoutAndRoundTrips() throws Exception {
        SplittableRandom r = new SplittableRandom(12);
        String base = CowTestSupport.name("create-base");
        byte[] backing = CowTestSupport.random(r, 777_777);
        CowTestSupport.backing(base, backing);
        String name = CowTestSupport.name("create-uml");
        Imago.create(StorageLocation.memory(name), "cow", CreateOptions.builder().backingFile(base)
                .size(backing.length).option("variant", "uml-v3").option("alignment", "4096").option("backing_mtime", "42").build());
        byte[] file = fileBytes(name);
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.BIG_ENDIAN);
        long size = backing.length;
        assertEquals(0x4F4F4F4D, b.getInt(0));
        assertEquals(3, b.getInt(4));
        assertEquals(42, b.getInt(8));
        assertEquals(size, b.getLong(12));
        assertEquals(512, b.getInt(20));
        assertEquals(4096, b.getInt(24));
        assertEquals(0, b.getInt(28));
        assertEquals(base, new String(file, 32, base.length(), StandardCharsets.US_ASCII));
        CowImages.Spec spec = CowImages.Spec.of(CowVariant.UML_V3, base, size).withAlignment(4096);
        assertEquals(spec.dataOffset() + size, file.length, "UML extends the file to the end of the data");
        byte[] model = backing.clone();
        try (Image image = CowTestSupport.open(name, true)) {
            assertEquals("uml-v3", image.info().formatSpecific().get("variant"));
            assertEquals(4096, image.info().formatSpecific().get("alignment"));
            randomOps(image, model, r, 200);
        }
        try (Image image = CowTestSupport.open(name, false)) {
            assertArrayEquals(model, CowTestSupport.readAll(image));
        }
        checkDiskBitmapConsistent(name, spec, model, backing);
    }

    @Test
    void createWithoutBackingReadsZeroes() throws Exception {
        String name = CowTestSupport.name("create-plain");
        Imago.create(StorageLocation.memory(name), "cow", CreateOptions.ofSize(100_000));
        byte[] model = new byte[100_352];
        try (Image image = CowTestSupport.open(name, true)) {
            assertEquals(List.of(), image.backing().stream().toList());
            assertArrayEquals(model, CowTestSupport.readAll(image));
            randomOps(image, model, new SplittableRandom(3), 100);
        }
        try (Image image = CowTestSupport.open(name, false)) {
            assertArrayEquals(model, CowTestSupport.readAll(image));
        }
    }

    @Test
    void createRejectsBadOptions() throws IOException {
        CowFormatDriver d = new CowFormatDriver();
        MemoryStorage s = MemoryStorage.create(CowTestSupport.name("bad-create"));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .option("cluster_size", "65536").build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .option("variant", "uml-v2").build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .backingFile("b").option("variant", "uml-v3").option("alignment", "1000").build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .backingFile("b").option("variant", "uml-v3").option("alignment", "0").build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .option("variant", "uml-v3").build()), "uml-v3 needs a backing file");
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .option("alignment", "4096").build()), "alignment is for uml-v3 only");
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .backingFile("x".repeat(1024)).build()), "name does not fit 1024 bytes with its NUL");
        d.create(s, CreateOptions.builder().size(512).backingFile("b").backingFormat("raw").build());
        assertEquals("b", ((CowInstance) d.open(s, OpenContext.of(false))).dependencies().getFirst().storedName(),
                "a backing format is accepted but cannot be recorded: the backing file is probed on open");
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .preallocation(Preallocation.FULL).build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(512)
                .option("backing_mtime", "-1").build()));
        assertThrows(IllegalArgumentException.class, () -> d.create(s, CreateOptions.builder().size(1L << 50)
                .build()), "a bitmap over the limit");
        assertEquals(Set.of("variant", "alignment", "backing_mtime"), d.createOptionNames());
    }

    @Test
    void longestNamesFit() throws Exception {
        for (String variant : List.of("qemu", "uml-v3")) {
            int max = variant.equals("qemu") ? 1023 : 4095;
            String name = CowTestSupport.name("long-" + variant);
            String backing = "b".repeat(max);
            MemoryStorage s = MemoryStorage.create(name);
            new CowFormatDriver().create(s, CreateOptions.builder().size(4096).backingFile(backing)
                    .option("variant", variant).build());
            try (Image image = Imago.opener().location(StorageLocation.memory(name)).noBacking().open()) {
                assertEquals(backing, image.info().backingFilename().orElseThrow());
            }
        }
    }

    @Test
    void resizeIsRefused() throws Exception {
        String name = CowTestSupport.name("resize");
        Imago.create(StorageLocation.memory(name), "cow", CreateOptions.ofSize(4096));
        try (Image image = CowTestSupport.open(name, true)) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> image.resize(8192, Preallocation.OFF));
            assertEquals(Feature.RESIZE, e.feature());
        }
    }

    /**
     * Writes on both sides of bitmap byte and bitmap sector boundaries, and at the end of images whose
     * size is not a multiple of 4096 (a partial last bitmap byte) or 512 (a partial last sector).
     */
    @ParameterizedTest
    @EnumSource(CowVariant.class)
    void bitmapBoundaries(CowVariant variant) throws Exception {
        boolean qemu = variant == CowVariant.QEMU_V2 || variant == CowVariant.QEMU_V2_32BIT;
        for (long size : qemu ? new long[] {4096 * 1000 + 1536, 512 * 9, 512}
                : new long[] {4096 * 1000 + 1536 + 100, 512 * 9 + 3, 1, 4096 * 2}) {
            SplittableRandom r = new SplittableRandom(size);
            String base = CowTestSupport.name("edge-base");
            byte[] backing = CowTestSupport.random(r, (int) size);
            CowTestSupport.backing(base, backing);
            CowImages.Spec spec = CowImages.Spec.of(variant, base, size);
            String name = CowTestSupport.name("edge");
            byte[] model = CowTestSupport.cow(name, spec, new BitSet(), new byte[(int) size], backing);
            List<long[]> writes = new ArrayList<>();
            // around bitmap byte boundaries: sectors 7|8, 15|16
            writes.add(new long[] {7 * 512 + 100, 600});
            writes.add(new long[] {16 * 512 - 1, 2});
            // across the 512-byte file sector boundary of the bitmap
            long boundaryByte = CowImages.roundUp(spec.bitmapOffset() + 1, 512) - spec.bitmapOffset();
            writes.add(new long[] {boundaryByte * 8 * 512 - 700, 1400});
            writes.add(new long[] {boundaryByte * 8 * 512 - 512, 512});
            // the end: last partial byte and last partial sector
            writes.add(new long[] {size - 1, 1});
            writes.add(new long[] {size - 513, 513});
            writes.add(new long[] {size - 5000, 4000});
            try (Image image = CowTestSupport.open(name, true)) {
                for (long[] w : writes) {
                    long off = Math.max(0, Math.min(size - 1, w[0]));
                    int len = (int) Math.min(w[1], size - off);
                    if (off + len > spec.bitCapacity() * 512 || len == 0) {
                        continue; // UML v1/v2 sectors without a bit are tested elsewhere
                    }
                    byte[] d = CowTestSupport.random(r, len);
                    image.write(ByteBuffer.wrap(d), off);
                    System.arraycopy(d, 0, model, (int) off, len);
                    assertArrayEquals(model, CowTestSupport.readAll(image), "after writing " + len + " at " + off);
                }
            }
            try (Image image = CowTestSupport.open(name, false)) {
                assertArrayEquals(model, CowTestSupport.readAll(image), variant + " size " + size);
            }
            checkDiskBitmapConsistent(name, spec, model, backing);
        }
    }

    /** Threads writing disjoint pieces of the same absent sectors must not undo each other's copies. */
    @Test
    void concurrentPartialWritesToTheSameSectorsKeepEachOthersData() throws Exception {
        SplittableRandom r = new SplittableRandom(5);
        int size = 64 * 512;
        String base = CowTestSupport.name("conc-base");
        byte[] backing = CowTestSupport.random(r, size);
        CowTestSupport.backing(base, backing);
        for (int round = 0; round < 20; round++) {
            String name = CowTestSupport.name("conc");
            MemoryStorage s = MemoryStorage.create(name);
            new CowFormatDriver().create(s, CreateOptions.builder().size(size).backingFile(base).build());
            s.close();
            byte[] model = backing.clone();
            try (Image image = CowTestSupport.open(name, true);
                    ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<?>> done = new ArrayList<>();
                int piece = 64;
                for (int off = 0; off < size; off += piece) {
                    byte[] d = CowTestSupport.random(r, piece);
                    System.arraycopy(d, 0, model, off, piece);
                    int at = off;
                    done.add(pool.submit(() -> {
                        image.write(ByteBuffer.wrap(d), at);
                        return null;
                    }));
                }
                for (Future<?> f : done) {
                    f.get();
                }
                assertArrayEquals(model, CowTestSupport.readAll(image), "round " + round);
            }
            try (Image image = CowTestSupport.open(name, false)) {
                assertArrayEquals(model, CowTestSupport.readAll(image), "round " + round + " reopened");
            }
        }
    }
}
