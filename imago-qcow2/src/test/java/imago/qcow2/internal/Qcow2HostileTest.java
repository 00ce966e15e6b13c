package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Valid qemu-made images with one field corrupted at a time: each must fail with the right exception
 * type, naming the file, quickly and without large allocations.
 */
class Qcow2HostileTest {
    @TempDir
    static Path shared;
    static byte[] plain;
    static byte[] small;
    static byte[] compressed;
    static byte[] extended;
    static byte[] snapshot;
    static byte[] bitmaps;

    @TempDir
    Path dir;

    @BeforeAll
    static void images() throws IOException {
        Qemu.require();
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "qcow2", "plain.qcow2", "4M");
        Qcow2DifferentialTest.qemuIo(shared, "plain.qcow2", "qcow2", List.of("write -P 0xab 0 128k",
                "write -z 1M 64k"));
        plain = Files.readAllBytes(shared.resolve("plain.qcow2"));
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "small.qcow2", "1M");
        Qcow2DifferentialTest.qemuIo(shared, "small.qcow2", "qcow2", List.of("write -P 0xab 0 8k"));
        small = Files.readAllBytes(shared.resolve("small.qcow2"));
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "raw", "src.raw", "1M");
        Qcow2DifferentialTest.qemuIo(shared, "src.raw", "raw", List.of("write -P 0x12 0 1M"));
        Qemu.ok(shared, "qemu-img", "convert", "-c", "-O", "qcow2", "src.raw", "c.qcow2");
        compressed = Files.readAllBytes(shared.resolve("c.qcow2"));
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "x.qcow2", "1M");
        Qcow2DifferentialTest.qemuIo(shared, "x.qcow2", "qcow2", List.of("write -P 0xab 0 4k"));
        extended = Files.readAllBytes(shared.resolve("x.qcow2"));
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "qcow2", "s.qcow2", "1M");
        Qcow2DifferentialTest.qemuIo(shared, "s.qcow2", "qcow2", List.of("write -P 0xab 0 4k"));
        Qemu.ok(shared, "qemu-img", "snapshot", "-c", "snap", "s.qcow2");
        snapshot = Files.readAllBytes(shared.resolve("s.qcow2"));
        Qemu.ok(shared, "qemu-img", "create", "-q", "-f", "qcow2", "b.qcow2", "1M");
        Qemu.ok(shared, "qemu-img", "bitmap", "--add", "b.qcow2", "first");
        Qemu.ok(shared, "qemu-img", "bitmap", "--add", "-g", "128k", "b.qcow2", "second");
        bitmaps = Files.readAllBytes(shared.resolve("b.qcow2"));
    }

    private Path mutate(byte[] original, Consumer<ByteBuffer> change) throws IOException {
        byte[] copy = original.clone();
        change.accept(ByteBuffer.wrap(copy));
        Path p = Files.createTempFile(dir, "hostile", ".qcow2");
        Files.write(p, copy);
        return p;
    }

    static void openAndReadAll(Path p) throws IOException {
        try (Image img = Imago.opener().path(p).format("qcow2").noBacking().open()) {
            Qcow2DifferentialTest.readAll(img);
            img.extents(0, img.size());
        }
    }

    private <T extends ImageException> T fails(Class<T> type, byte[] original, Consumer<ByteBuffer> change,
            String messagePart) throws IOException {
        Path p = mutate(original, change);
        T e = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> assertThrows(type, () -> openAndReadAll(p)));
        assertEquals(type, e.getClass(), e.toString());
        assertTrue(e.getMessage().contains(p.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), () -> "'" + messagePart + "' not in " + e.getMessage());
        return e;
    }

    static long l1Offset(byte[] image) {
        return ByteBuffer.wrap(image).getLong(40);
    }

    static long l2Offset(byte[] image) {
        return ByteBuffer.wrap(image).getLong((int) l1Offset(image)) & Qcow2Entries.OFFSET_MASK;
    }

    @Test
    void theOriginalsAreFine() throws IOException {
        for (byte[] b : List.of(plain, small, compressed, extended, snapshot, bitmaps)) {
            openAndReadAll(mutate(b, x -> { }));
        }
    }

    @Test
    void magicAndVersion() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.putInt(0, 0x12345678), "not in qcow2 format");
        fails(UnsupportedFeatureException.class, plain, b -> b.putInt(4, 1), "version 1");
        fails(UnsupportedFeatureException.class, plain, b -> b.putInt(4, 4), "version 4");
    }

    @Test
    void clusterBits() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.putInt(20, 8), "cluster size");
        fails(CorruptImageException.class, plain, b -> b.putInt(20, 22), "cluster size");
        fails(CorruptImageException.class, plain, b -> b.putInt(20, -1), "cluster size");
    }

    @Test
    void backingFileName() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.putLong(8, 65536 + 8).putInt(16, 4), "backing file offset");
        fails(CorruptImageException.class, plain, b -> b.putLong(8, 65536 - 2).putInt(16, 4), "past cluster 0");
        fails(CorruptImageException.class, plain, b -> b.putLong(8, 1024).putInt(16, 2000), "too long");
        fails(CorruptImageException.class, plain, b -> b.putLong(8, 1L << 62).putInt(16, 4), "backing file offset");
    }

    @Test
    void encryption() throws IOException {
        fails(UnsupportedFeatureException.class, plain, b -> b.putInt(32, 1), "encrypted images are not supported");
        // LUKS (crypt_method 2) needs its crypto header extension, which names a cluster-aligned region in the file
        fails(CorruptImageException.class, plain, b -> b.putInt(32, 2), "without a crypto header extension");
        fails(CorruptImageException.class, plain, b -> b.putInt(32, 3), "encryption method");
    }

    @Test
    void qemuMadeAesImagesAreRefusedAndLuksOnesNeedTheirSecret() throws IOException {
        for (String format : List.of("luks", "aes")) {
            Path p = dir.resolve(format + ".qcow2");
            // a short LUKS key-derivation time keeps the test fast
            Qemu.okDerivingKey(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=abc",
                    "-o", "encrypt.format=" + format + ",encrypt.key-secret=sec0"
                            + (format.equals("luks") ? ",encrypt.iter-time=10" : ""), p, "1M");
            if (format.equals("luks")) {
                // LUKS is read with its secret (Qcow2LuksQemuTest); without it, the header shows and no data
                var e = assertThrows(ImageException.class, () -> openAndReadAll(p));
                assertTrue(e.getMessage().contains("Parameter 'encrypt.key-secret' is required for cipher"),
                        e.getMessage());
                continue;
            }
            var e = assertThrows(UnsupportedFeatureException.class, () -> openAndReadAll(p));
            assertEquals("AES encryption", e.featureName());
            assertTrue(e.getMessage().contains(p.getFileName().toString()), e.getMessage());
        }
    }

    @Test
    void l1Table() throws IOException {
        fails(ImageLimitException.class, plain, b -> b.putInt(36, 0x7fffffff), "Active L1 table too large");
        fails(ImageLimitException.class, plain, b -> b.putInt(36, -1), "Active L1 table too large");
        fails(ImageLimitException.class, plain, b -> b.putInt(36, 4 << 20 + 1), "Active L1 table too large");
        fails(CorruptImageException.class, plain, b -> b.putInt(36, 0), "L1 table is too small");
        fails(CorruptImageException.class, plain, b -> b.putLong(40, l1Offset(plain) + 512), "offset invalid");
        fails(CorruptImageException.class, plain, b -> b.putLong(40, 1L << 60), "offset invalid");
        fails(CorruptImageException.class, plain, b -> b.putLong(40, -65536), "offset invalid");
        fails(CorruptImageException.class, plain, b -> b.putLong(40, 0), "overlaps the header");
        // past the end of the file (cut short) an L1 table reads as zeroes, as QEMU reads it (within QEMU's bound of
        // 32 MiB); a writable open refuses it before allocating
        readsButIsNotWritten(mutate(plain, b -> b.putLong(40, 1L << 40)), true);
        readsButIsNotWritten(mutate(plain, b -> b.putInt(36, 4 << 20)), false);
    }

    /**
     * A file cut short: read-only, what lies past its end reads as zeroes (the first MiB all zeroes if
     * {@code zeroes}); a writable open refuses it.
     */
    private static void readsButIsNotWritten(Path p, boolean zeroes) throws IOException {
        try (Image img = Imago.opener().path(p).format("qcow2").noBacking().open()) {
            Qcow2DifferentialTest.readAll(img);
            ByteBuffer all = ByteBuffer.allocate((int) Math.min(img.size(), 1 << 20));
            img.read(all, 0);
            if (zeroes) {
                assertEquals(-1, all.flip().mismatch(ByteBuffer.allocate(all.limit())), "reads zeroes");
            }
        }
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> {
            try (Image img = Imago.opener().path(p).format("qcow2").writable(true).open()) {
                Qcow2DifferentialTest.readAll(img);
            }
        });
        assertTrue(e.getMessage().contains("past the end of the file"), e.getMessage());
    }

    @Test
    void virtualSize() throws IOException {
        fails(ImageLimitException.class, plain, b -> b.putLong(24, 1L << 62), "too big");
        fails(CorruptImageException.class, plain, b -> b.putLong(24, -1L), "too large");
        fails(CorruptImageException.class, plain, b -> b.putLong(24, 1L << 40), "L1 table is too small");
    }

    @Test
    void refcountAndSnapshotTables() throws IOException {
        fails(ImageLimitException.class, plain, b -> b.putInt(56, 1 << 20), "Reference count table too large");
        fails(CorruptImageException.class, plain, b -> b.putLong(48, 65536 + 8), "offset invalid");
        fails(ImageLimitException.class, plain, b -> b.putInt(60, 70000), "Too many snapshots");
        fails(CorruptImageException.class, plain, b -> b.putInt(60, 1).putLong(64, 1L << 40), "past the end");
        fails(CorruptImageException.class, plain, b -> b.putInt(60, 1).putLong(64, 100), "offset invalid");
        ByteBuffer s = ByteBuffer.wrap(snapshot);
        int table = (int) s.getLong(64);
        fails(CorruptImageException.class, snapshot, b -> b.putInt(table + 36, 4096), "Too much extra metadata");
        fails(CorruptImageException.class, snapshot, b -> b.putLong(table, s.getLong(table) + 8), "offset invalid");
        fails(ImageLimitException.class, snapshot, b -> b.putInt(table + 8, 8 << 20), "Snapshot L1 table too large");
    }

    @Test
    void headerLengthAndRefcountOrder() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.putInt(100, 4), "too short");
        fails(CorruptImageException.class, plain, b -> b.putInt(100, 1 << 20), "exceeds cluster size");
        fails(CorruptImageException.class, plain, b -> b.putInt(100, 106), "multiple of 8");
        fails(CorruptImageException.class, plain, b -> b.putInt(96, 7), "Reference count entry width too large");
    }

    @Test
    void incompatibleFeatures() throws IOException {
        var e = fails(UnsupportedFeatureException.class, plain, b -> b.putLong(72, 1L << 5),
                "Unsupported qcow2 feature(s): unknown incompatible feature bit 5");
        assertEquals("unknown incompatible feature bit 5", e.featureName());
        // rename the feature-name table's first entry (incompatible bit 0, "dirty bit") to bit 20
        fails(UnsupportedFeatureException.class, plain, b -> {
            int p = featureTable(b);
            b.put(p + 1, (byte) 20);
            b.put(p + 2, "frobnication\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            b.putLong(72, 1L << 20);
        }, "Unsupported qcow2 feature(s): frobnication");
        fails(CorruptImageException.class, small, b -> b.putLong(72, Qcow2Header.INCOMPAT_EXTL2),
                "at least 16384");
        fails(CorruptImageException.class, plain, b -> b.putLong(72, Qcow2Header.INCOMPAT_DATA_FILE),
                "'data-file' is required for this image");
        fails(CorruptImageException.class, plain, b -> b.putLong(88, Qcow2Header.AUTOCLEAR_DATA_FILE_RAW),
                "data-file-raw requires a data file");
    }

    @Test
    void compressionType() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.put(104, (byte) 1), "does not match");
        fails(CorruptImageException.class, plain, b -> b.putLong(72, Qcow2Header.INCOMPAT_COMPRESSION),
                "does not match");
        fails(UnsupportedFeatureException.class, plain, b -> {
            b.put(104, (byte) 2);
            b.putLong(72, Qcow2Header.INCOMPAT_COMPRESSION);
        }, "Unknown compression type 2");
    }

    @Test
    void headerExtensions() throws IOException {
        fails(CorruptImageException.class, plain, b -> b.putInt(featureTable(b) - 4, 1 << 20),
                "Header extension too large");
        fails(CorruptImageException.class, plain, b -> {
            int p = b.getInt(100);
            b.putInt(p, Qcow2Header.EXT_BACKING_FORMAT);
            b.putInt(p + 4, 16);
        }, "backing format extension");
    }

    @Test
    void l1AndL2Entries() throws IOException {
        int l1 = (int) l1Offset(plain);
        long l2 = l2Offset(plain);
        fails(CorruptImageException.class, plain, b -> b.putLong(l1, b.getLong(l1) | 2), "reserved bits");
        fails(CorruptImageException.class, plain, b -> b.putLong(l1, b.getLong(l1) | (1L << 60)), "reserved bits");
        fails(CorruptImageException.class, plain, b -> b.putLong(l1, (b.getLong(l1) & (1L << 63)) | (l2 + 4096)),
                "unaligned");

        int e0 = (int) l2;
        fails(CorruptImageException.class, plain, b -> b.putLong(e0, b.getLong(e0) | 0x100), "reserved bits");
        fails(CorruptImageException.class, plain, b -> b.putLong(e0, b.getLong(e0) | (1L << 58)), "reserved bits");
        fails(CorruptImageException.class, plain, b -> b.putLong(e0, (1L << 63) | (b.getLong(e0) + 4096)
                & Qcow2Entries.OFFSET_MASK), "unaligned");

        var e = fails(CorruptImageException.class, plain, b -> b.putLong(e0 + 8, b.getLong(e0 + 8) | 0x2),
                "entry 1");
        assertEquals(l2, e.offset().orElseThrow());
    }

    @Test
    void dataFileClustersMustSitAtTheirGuestOffset() throws IOException {
        Qemu.ok(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file=data.bin", "d.qcow2", "1M");
        Qcow2DifferentialTest.qemuIo(dir, "d.qcow2", "qcow2", List.of("write -P 1 0 64k", "write -P 2 128k 64k"));
        byte[] image = Files.readAllBytes(dir.resolve("d.qcow2"));
        openAndReadAll(mutate(image, b -> { }));
        int e0 = (int) l2Offset(image);
        fails(CorruptImageException.class, image, b -> b.putLong(e0, (1L << 63) | 131072), "does not match guest");
        // the data file is missing
        Files.delete(dir.resolve("data.bin"));
        Path p = mutate(image, b -> { });
        assertThrows(java.nio.file.NoSuchFileException.class, () -> openAndReadAll(p));
    }

    @Test
    void truncatedFiles() throws IOException {
        // a header cut short reads on as zeroes, as in QEMU: its header length is then 0
        fails(CorruptImageException.class, java.util.Arrays.copyOf(plain, 50), b -> { }, "too short");
        // tables cut short read as zeroes (QEMU's answer is compared in TruncatedImageDifferentialTest)
        readsButIsNotWritten(mutate(java.util.Arrays.copyOf(plain, (int) l1Offset(plain)), b -> { }), true);
        try (Image img = Imago.opener().path(mutate(java.util.Arrays.copyOf(plain, (int) l2Offset(plain) + 65536),
                b -> { })).format("qcow2").noBacking().open()) {
            Qcow2DifferentialTest.readAll(img);
        }
    }

    @Test
    void compressedClusters() throws IOException {
        long l2 = l2Offset(compressed);
        int e0 = (int) l2;
        // garbage instead of deflate data
        fails(CorruptImageException.class, compressed, b -> {
            long entry = b.getLong(e0);
            long host = entry & ((1L << 54) - 1);
            for (int i = 0; i < 64; i++) {
                b.put((int) host + i, (byte) 0xff);
            }
        }, "compressed cluster");
        // a descriptor pointing past the end of the file
        fails(CorruptImageException.class, compressed, b -> b.putLong(e0, (1L << 62) | (1L << 50)), "past the end");
        // a COPIED compressed cluster
        fails(CorruptImageException.class, compressed, b -> b.putLong(e0, b.getLong(e0) | (1L << 63)), "COPIED");
        // a descriptor pointing at metadata (the mostly zero L2 table itself)
        fails(CorruptImageException.class, compressed, b -> b.putLong(e0, (1L << 62) | (l2 + 4096)),
                "compressed cluster");
    }

    @Test
    void extendedL2Bitmaps() throws IOException {
        int e0 = (int) l2Offset(extended);
        fails(CorruptImageException.class, extended, b -> b.putLong(e0 + 8, b.getLong(e0 + 8) | (1L << 32)),
                "both allocated and zero");
        fails(CorruptImageException.class, extended, b -> b.putLong(e0 + 16 + 8, 1L), "without host offset");
        fails(CorruptImageException.class, extended, b -> b.putLong(e0, b.getLong(e0) | 1L), "reserved bits");
    }

    @Test
    void dirtyImagesOpenAndAreRepairedWhenOpenedWritable() throws IOException {
        Path dirty = mutate(plain, b -> b.putLong(72, Qcow2Header.INCOMPAT_DIRTY).putLong(80, 1));
        try (Image img = Imago.opener().path(dirty).open()) {
            assertTrue(img.info().dirty());
            assertEquals(true, img.info().formatSpecific().get("lazy-refcounts"));
        }
        Path ok = mutate(plain, b -> { });
        try (Image w = Imago.opener().path(ok).writable(true).open()) {
            assertEquals("qcow2", w.format());
        }
        // a writable open rebuilds the refcounts (nothing to fix here) and clears the dirty bit
        try (Image w = Imago.opener().path(dirty).writable(true).open()) {
            assertEquals(false, w.info().dirty());
        }
        try (Image again = Imago.opener().path(dirty).open()) {
            assertEquals(false, again.info().dirty());
            assertTrue(again.check(imago.api.Repair.NONE).clean());
        }
        Path corrupt = mutate(plain, b -> b.putLong(72, Qcow2Header.INCOMPAT_CORRUPT));
        openAndReadAll(corrupt);
        var c = assertThrows(CorruptImageException.class, () -> Imago.opener().path(corrupt).writable(true).open());
        assertTrue(c.getMessage().contains("corrupt"), c.getMessage());
    }

    @Test
    void bitmapsExtensionAndDirectory() throws IOException {
        int ext = extension(ByteBuffer.wrap(bitmaps), Qcow2Header.EXT_BITMAPS);
        int dir = (int) ByteBuffer.wrap(bitmaps).getLong(ext + 16);
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(ext - 4, 16), "Invalid extension length");
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(ext + 4, 1), "Reserved field is not zero");
        fails(ImageLimitException.class, bitmaps, b -> b.putInt(ext, 70000), "exceeding the QEMU supported maximum");
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(ext, 0), "zero bitmaps");
        fails(CorruptImageException.class, bitmaps, b -> b.putLong(ext + 16, dir + 8), "invalid bitmap directory offset");
        fails(ImageLimitException.class, bitmaps, b -> b.putLong(ext + 8, 1L << 40), "exceeds the maximum");
        fails(CorruptImageException.class, bitmaps, b -> b.putLong(ext + 16, 1L << 40), "inside the file");
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(ext, 3), "does not fit 3 entries");
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(ext, 1), "Broken bitmap directory");
        fails(CorruptImageException.class, bitmaps, b -> b.put(dir + 16, (byte) 2), "unknown type 2");
        fails(CorruptImageException.class, bitmaps, b -> b.put(dir + 17, (byte) 40), "granularity bits 40");
        fails(CorruptImageException.class, bitmaps, b -> b.putInt(dir + 12, 0x10), "reserved flags");
        fails(CorruptImageException.class, bitmaps, b -> b.putLong(dir, 4096), "bitmap table offset");
        fails(CorruptImageException.class, bitmaps, b -> b.putShort(dir + 18, (short) 4000), "Broken bitmap directory");
        // a program without bitmap support cleared the autoclear bit: QEMU ignores the bitmaps, so does imago
        Path cleared = mutate(bitmaps, b -> b.putLong(88, 0));
        try (Image img = Imago.opener().path(cleared).open()) {
            assertTrue(!img.info().formatSpecific().containsKey("bitmaps"));
        }
        try (Image img = Imago.opener().path(mutate(bitmaps, b -> { })).open()) {
            assertEquals(List.of(Map.of("flags", List.of("auto"), "name", "first", "granularity", 65536L),
                    Map.of("flags", List.of("auto"), "name", "second", "granularity", 131072L)),
                    img.info().formatSpecific().get("bitmaps"));
        }
    }

    /** Offset of the payload of the first header extension of {@code type}. */
    static int extension(ByteBuffer b, int type) {
        int p = b.getInt(100);
        while (b.getInt(p) != type) {
            if (b.getInt(p) == 0) {
                throw new AssertionError("no extension 0x" + Integer.toHexString(type));
            }
            p += 8 + ((b.getInt(p + 4) + 7) & ~7);
        }
        return p + 8;
    }

    /** Offset of the first feature-name entry of a qemu-made v3 image. */
    static int featureTable(ByteBuffer b) {
        int p = b.getInt(100);
        while (true) {
            int type = b.getInt(p);
            int len = b.getInt(p + 4);
            if (type == Qcow2Header.EXT_FEATURE_NAMES) {
                return p + 8;
            }
            if (type == 0) {
                throw new AssertionError("no feature table");
            }
            p += 8 + ((len + 7) & ~7);
        }
    }
}
