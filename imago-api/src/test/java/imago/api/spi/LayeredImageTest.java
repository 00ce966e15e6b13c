package imago.api.spi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Extent;
import imago.api.Image;
import imago.api.Mapping;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.UnsupportedFeatureException;
import imago.api.ZeroFlag;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class LayeredImageTest {
    private static final int SIZE = 64 * 1024;

    /** A backing image whose every byte is {@code (offset * 7) & 0xff}, {@code size} bytes long. */
    private static LayeredImage backing(int size) throws IOException {
        ArrayStorage s = new ArrayStorage(size, 1);
        for (int i = 0; i < size; i++) {
            s.bytes()[i] = (byte) (i * 7);
        }
        TestLayer layer = new TestLayer(s, size, false);
        for (long u = 0; u < size / TestLayer.UNIT; u++) {
            layer.states.put(u, TestLayer.State.DATA);
        }
        return LayeredImage.builder("test", layer, s).build();
    }

    private static byte[] read(Image image, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        image.read(b, offset);
        assertFalse(b.hasRemaining());
        return b.array();
    }

    @Test
    void readsEveryMappingKindAndFallsThroughToBacking() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        Arrays.fill(s.bytes(), (byte) 0x55);
        TestLayer layer = new TestLayer(s, SIZE, false);
        layer.states.put(1L, TestLayer.State.DATA);
        layer.states.put(2L, TestLayer.State.ZERO);
        layer.states.put(3L, TestLayer.State.SPECIAL);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).backing(backing(SIZE / 2), true).build()) {
            byte[] all = read(img, 0, SIZE);
            for (int i = 0; i < SIZE; i++) {
                int unit = i / TestLayer.UNIT;
                byte expected = switch (unit) {
                    case 1 -> 0x55;
                    case 2 -> 0;
                    case 3 -> 3;
                    default -> i < SIZE / 2 ? (byte) (i * 7) : 0;
                };
                assertEquals(expected, all[i], "byte " + i);
            }
        }
    }

    @Test
    void extentsDescendTheChainLikeQemuImgMap() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer layer = new TestLayer(s, SIZE, false);
        layer.states.put(0L, TestLayer.State.DATA);
        layer.states.put(1L, TestLayer.State.ZERO);
        layer.states.put(2L, TestLayer.State.SPECIAL);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).backing(backing(4096), true).build()) {
            List<Extent> extents = img.extents(0, SIZE);
            assertEquals(new Extent(0, 512, 0, true, false, true, false, java.util.OptionalLong.of(0),
                    java.util.Optional.of("array")), extents.get(0));
            assertTrue(extents.get(1).zero() && extents.get(1).present() && !extents.get(1).data());
            assertTrue(extents.get(2).compressed() && extents.get(2).data());
            Extent fromBacking = extents.get(3);
            assertEquals(1536, fromBacking.offset());
            assertEquals(1, fromBacking.depth());
            assertEquals(4096 - 1536, fromBacking.length());
            Extent past = extents.get(4);
            assertEquals(4096, past.offset());
            assertEquals(0, past.depth());
            assertFalse(past.present());
            assertTrue(past.zero());
            assertEquals(SIZE, past.offset() + past.length());
        }
    }

    @Test
    void dataOverAHoleInTheStorageMapsAsDataAndZeroWhenTheLayerAsks() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1) {
            @Override
            public StorageExtent dataExtent(long offset, long maxLength) {
                return offset < 1024 ? new StorageExtent(offset, Math.min(maxLength, 1024 - offset), true)
                        : new StorageExtent(offset, maxLength, false);
            }
        };
        TestLayer layer = new TestLayer(s, SIZE, false) {
            @Override
            public boolean mapsStorageHoles() {
                return true;
            }
        };
        TestLayer plain = new TestLayer(s, SIZE, false);
        for (long u = 0; u < 8; u++) {
            layer.states.put(u, TestLayer.State.DATA);
            plain.states.put(u, TestLayer.State.DATA);
        }
        try (LayeredImage img = LayeredImage.builder("test", plain, s).writable(true).build()) {
            Extent whole = img.extent(0, SIZE);
            assertEquals(4096, whole.length(), "without mapsStorageHoles, storage holes do not split extents");
            assertFalse(whole.zero());
        }
        try (LayeredImage img = LayeredImage.builder("test", layer, s).build()) {
            Extent data = img.extent(0, SIZE);
            assertEquals(1024, data.length());
            assertTrue(data.data() && !data.zero());
            Extent hole = img.extent(1024, SIZE);
            assertEquals(4096 - 1024, hole.length());
            assertTrue(hole.data() && hole.zero() && hole.present());
            assertEquals(java.util.OptionalLong.of(1024), hole.hostOffset());
        }
    }

    @Test
    void partialWritesCopyWhatLiesBelowIntoTheRestOfTheUnit() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer layer = new TestLayer(s, SIZE, true);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true)
                .backing(backing(SIZE), true).build()) {
            byte[] before = read(img, 0, SIZE);
            byte[] patch = new byte[1000];
            Arrays.fill(patch, (byte) 0xEE);
            ByteBuffer src = ByteBuffer.wrap(patch);
            img.write(src, 700);
            assertFalse(src.hasRemaining(), "write consumes its buffer");
            System.arraycopy(patch, 0, before, 700, patch.length);
            assertArrayEquals(before, read(img, 0, SIZE));
            assertEquals(TestLayer.State.DATA, layer.state(1));
            assertEquals(TestLayer.State.UNALLOCATED, layer.state(4));
        }
    }

    @Test
    void writeZeroesUsesZeroFlagsAndFallsBackToWritingZeroes() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer layer = new TestLayer(s, SIZE, true);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true)
                .backing(backing(SIZE), true).build()) {
            img.writeZeroes(100, 2000);
            byte[] all = read(img, 0, SIZE);
            for (int i = 0; i < 4096; i++) {
                byte expected = i >= 100 && i < 2100 ? 0 : (byte) (i * 7);
                assertEquals(expected, all[i], "byte " + i);
            }
            assertEquals(TestLayer.State.ZERO, layer.state(1));
            layer.zeroFlags = false;
            assertThrows(UnsupportedFeatureException.class,
                    () -> img.writeZeroes(8192, 512, Set.of(ZeroFlag.NO_FALLBACK)));
            img.writeZeroes(8192, 512, Set.of(ZeroFlag.MAY_UNMAP));
            assertArrayEquals(new byte[512], read(img, 8192, 512));
        }
    }

    /** Explicit zeroes go up to the next multiple of the layer's zero alignment, not of its cluster size. */
    @Test
    void writeZeroesFallsBackOnlyUpToTheZeroAlignment() throws IOException {
        for (boolean fine : new boolean[] {false, true}) {
            ArrayStorage s = new ArrayStorage(SIZE, 1);
            TestLayer layer = new TestLayer(s, SIZE, true) {
                @Override
                public java.util.OptionalInt clusterSize() {
                    return java.util.OptionalInt.of(4 * UNIT);
                }

                @Override
                public java.util.OptionalInt zeroAlignment() {
                    return fine ? java.util.OptionalInt.of(UNIT) : clusterSize();
                }
            };
            try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true)
                    .backing(backing(SIZE), true).build()) {
                img.writeZeroes(100, 2000);
                byte[] all = read(img, 0, 4096);
                for (int i = 0; i < 4096; i++) {
                    byte expected = i >= 100 && i < 2100 ? 0 : (byte) (i * 7);
                    assertEquals(expected, all[i], "byte " + i);
                }
                assertEquals(TestLayer.State.DATA, layer.state(0));
                // with the finer alignment, units 1-3 become zero by metadata; else zeroes are written up to 2048
                assertEquals(fine ? TestLayer.State.ZERO : TestLayer.State.DATA, layer.state(1));
                assertEquals(TestLayer.State.DATA, layer.state(4));
            }
        }
    }

    @Test
    void requestsOutsideTheImageAreCallerMistakes() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        try (LayeredImage img = LayeredImage.builder("test", new TestLayer(s, SIZE, true), s).writable(true).build()) {
            assertThrows(IllegalArgumentException.class, () -> img.read(ByteBuffer.allocate(2), SIZE - 1));
            assertThrows(IllegalArgumentException.class, () -> img.read(ByteBuffer.allocate(1), -1));
            assertThrows(IllegalArgumentException.class, () -> img.write(ByteBuffer.allocate(1), SIZE));
            assertThrows(IllegalArgumentException.class, () -> img.discard(0, SIZE + 1));
            assertThrows(IllegalArgumentException.class, () -> img.mapping(SIZE, 1));
            assertThrows(IllegalArgumentException.class, () -> img.resize(-1, Preallocation.OFF));
            img.read(ByteBuffer.allocate(0), SIZE);
        }
    }

    @Test
    void readOnlyImagesRefuseEveryChange() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        try (LayeredImage img = LayeredImage.builder("test", new TestLayer(s, SIZE, false), s).build()) {
            assertThrows(ReadOnlyImageException.class, () -> img.write(ByteBuffer.allocate(1), 0));
            assertThrows(ReadOnlyImageException.class, () -> img.writeZeroes(0, 1));
            assertThrows(ReadOnlyImageException.class, () -> img.discard(0, 1));
            assertThrows(ReadOnlyImageException.class, () -> img.resize(0, Preallocation.OFF));
        }
    }

    @Test
    void aFailedDataWriteIsReportedToTheDriver() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer layer = new TestLayer(s, SIZE, true);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true).build()) {
            img.write(ByteBuffer.allocate(512), 0); // allocate unit 0 first, so the next write is the data write
            s.failNextWrites.set(1);
            int committed = layer.committedWrites.get();
            assertThrows(IOException.class, () -> img.write(ByteBuffer.allocate(10), 5));
            assertEquals(1, layer.abortedWrites.get(), "the failed write's ticket was closed without a commit");
            assertEquals(committed, layer.committedWrites.get());
        }
    }

    @Test
    void aDriverThatBreaksTheMappingContractCannotMisdirectIo() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer liar = new TestLayer(s, SIZE, false) {
            @Override
            public Mapping mapping(long offset, long maxLength) {
                return new Mapping.Data(offset + 1, maxLength, storage, 0);
            }
        };
        try (LayeredImage img = LayeredImage.builder("test", liar, s).build()) {
            assertThrows(IllegalStateException.class, () -> img.read(ByteBuffer.allocate(10), 0));
        }
    }

    @Test
    void closedImagesRefuseRequests() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        LayeredImage img = LayeredImage.builder("test", new TestLayer(s, SIZE, false), s).build();
        img.close();
        img.close();
        assertThrows(IllegalStateException.class, () -> img.read(ByteBuffer.allocate(1), 0));
    }

    @Test
    void concurrentWritersOnVirtualThreadsAllLand() throws Exception {
        ArrayStorage s = new ArrayStorage(SIZE, 1);
        TestLayer layer = new TestLayer(s, SIZE, true);
        try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true).build();
                var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < SIZE / 1024; t++) {
                int unit = t;
                futures.add(pool.submit(() -> {
                    byte[] b = new byte[1024];
                    Arrays.fill(b, (byte) unit);
                    img.write(ByteBuffer.wrap(b), unit * 1024L);
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
            byte[] all = read(img, 0, SIZE);
            for (int i = 0; i < SIZE; i++) {
                assertEquals((byte) (i / 1024), all[i], "byte " + i);
            }
        }
    }

    @Test
    void alignedStorageBouncesUnalignedRequestsExactly() throws IOException {
        ArrayStorage aligned = new ArrayStorage(SIZE, 512);
        Storage s = AlignedStorage.wrap(aligned);
        byte[] model = new byte[SIZE];
        Random random = new Random(7);
        for (int i = 0; i < 500; i++) {
            int off = random.nextInt(SIZE - 1);
            int len = 1 + random.nextInt(Math.min(3000, SIZE - off));
            if (random.nextBoolean()) {
                byte[] b = new byte[len];
                random.nextBytes(b);
                s.write(ByteBuffer.wrap(b), off);
                System.arraycopy(b, 0, model, off, len);
            } else {
                ByteBuffer b = ByteBuffer.allocate(len);
                s.read(b, off);
                assertArrayEquals(Arrays.copyOfRange(model, off, off + len), b.array(), "read at " + off);
            }
        }
        assertEquals(SIZE, aligned.size());
        assertTrue(AlignedStorage.wrap(new ArrayStorage(1, 1)) instanceof ArrayStorage);
    }

    @Test
    void compressedWritesAreCheckedAndFallBackToOrdinaryWrites() throws IOException {
        ArrayStorage s = new ArrayStorage(SIZE + 100, 1);
        List<Long> compressed = new ArrayList<>();
        // a layer that "compresses" only units of zeroes, and leaves the rest to the ordinary path
        class Compressing extends TestLayer implements CompressedWriter {
            Compressing() {
                super(s, SIZE + 100, true);
            }

            @Override
            public boolean writeCompressed(ByteBuffer cluster, long offset) {
                boolean zero = cluster.mismatch(ByteBuffer.allocate(cluster.remaining())) < 0;
                if (zero) {
                    compressed.add(offset);
                    states.put(offset / UNIT, State.ZERO);
                }
                return zero;
            }
        }
        TestLayer layer = new Compressing();
        try (LayeredImage img = LayeredImage.builder("test", layer, s).writable(true).build()) {
            byte[] data = new byte[TestLayer.UNIT];
            Arrays.fill(data, (byte) 7);
            img.writeCompressed(ByteBuffer.wrap(data), 2 * TestLayer.UNIT);
            img.writeCompressed(ByteBuffer.allocate(TestLayer.UNIT), 3 * TestLayer.UNIT);
            img.writeCompressed(ByteBuffer.wrap(data, 0, 100), SIZE); // the partial last unit
            assertEquals(List.of(3L * TestLayer.UNIT), compressed);
            ByteBuffer back = ByteBuffer.allocate(TestLayer.UNIT);
            img.read(back, 2 * TestLayer.UNIT);
            assertArrayEquals(data, back.array());
            ByteBuffer tail = ByteBuffer.allocate(100);
            img.read(tail, SIZE);
            assertArrayEquals(Arrays.copyOf(data, 100), tail.array());
            assertThrows(IllegalArgumentException.class, () -> img.writeCompressed(ByteBuffer.wrap(data), 1));
            assertThrows(IllegalArgumentException.class, () -> img.writeCompressed(ByteBuffer.wrap(data, 0, 100), 0));
            assertThrows(IllegalArgumentException.class, () -> img.writeCompressed(ByteBuffer.wrap(data), SIZE));
        }
        // a format without compression refuses, and so does an image that is read-only
        TestLayer plain = new TestLayer(s, SIZE, true);
        try (LayeredImage img = LayeredImage.builder("test", plain, s).writable(true).build()) {
            assertThrows(UnsupportedFeatureException.class, () -> img.writeCompressed(ByteBuffer.allocate(512), 0));
        }
        try (LayeredImage img = LayeredImage.builder("test", new TestLayer(s, SIZE, false), s).build()) {
            assertThrows(ReadOnlyImageException.class, () -> img.writeCompressed(ByteBuffer.allocate(512), 0));
        }
    }
}
