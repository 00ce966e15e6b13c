package imago.storage.file.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.ImageException;
import imago.api.ImageLockedException;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.api.spi.AlignedStorage;
import imago.api.spi.Storage;
import imago.api.spi.StorageExtent;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link FileStorage} with native access ({@code true}) and on the portable {@code FileChannel} path
 * ({@code false}). Where the file system decides (punch hole, SEEK_DATA, O_DIRECT), {@link Probe}
 * asks it first and the test asserts either the native behaviour or the fallback.
 */
class FileStorageTest {
    private static final int KIB = 1024;
    private static final int MIB = 1024 * 1024;

    @TempDir
    Path dir;

    private FileStorage create(Path file, boolean nativeAccess) throws IOException {
        return FileStorage.open(StorageLocation.file(file), StorageOptions.createNew(), nativeAccess);
    }

    private FileStorage open(Path file, StorageOptions options, boolean nativeAccess) throws IOException {
        return FileStorage.open(StorageLocation.file(file), options, nativeAccess);
    }

    private static byte[] random(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] read(Storage s, long offset, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        s.read(dst, offset);
        assertFalse(dst.hasRemaining(), "read must fill the buffer");
        return dst.array();
    }

    private static void write(Storage s, long offset, byte[] data) throws IOException {
        s.write(ByteBuffer.wrap(data), offset);
    }

    private static void assertZero(byte[] b) {
        for (int i = 0; i < b.length; i++) {
            if (b[i] != 0) {
                throw new AssertionError("byte " + i + " is " + b[i] + ", expected 0");
            }
        }
    }

    @Test
    void nativeAccessIsBoundOnLinux() throws IOException {
        System.out.printf("native access: %s; in %s: punch hole %s, SEEK_DATA %s, O_DIRECT %s; module %s%n",
                LibC.available() ? "yes" : "no (" + LibC.unavailableReason() + ")", dir, Probe.punchHole(dir),
                Probe.seekData(dir), Probe.directIO(dir), FileStorage.class.getModule());
        if (Probe.expectNative()) {
            assertTrue(LibC.available(), () -> "native access should work here: " + LibC.unavailableReason());
        } else {
            assertFalse(LibC.available());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void roundTripsHeapDirectAndReadOnlyBuffers(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("a.img");
        byte[] a = random(4000, 1);
        byte[] b = random(70000, 2);
        try (FileStorage s = create(file, nativeAccess)) {
            assertEquals(nativeAccess && LibC.available(), s.nativeAccess());
            assertEquals(0, s.size());
            write(s, 0, a);
            ByteBuffer direct = ByteBuffer.allocateDirect(b.length).put(b).flip();
            s.write(direct, 10000);
            assertFalse(direct.hasRemaining());
            s.write(ByteBuffer.wrap(a).asReadOnlyBuffer(), 100000);
            assertEquals(100000 + a.length, s.size());
            assertArrayEquals(a, read(s, 0, a.length));
            ByteBuffer dst = ByteBuffer.allocateDirect(b.length);
            s.read(dst, 10000);
            assertEquals(ByteBuffer.wrap(b), dst.flip());
            assertArrayEquals(a, read(s, 100000, a.length));
            assertZero(read(s, a.length, 10000 - a.length));
            s.flush();
            s.sync();
        }
        try (FileStorage s = open(file, StorageOptions.readOnly(), nativeAccess)) {
            assertTrue(s.readOnly());
            assertArrayEquals(a, read(s, 0, a.length));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void readsPastTheEndAsZeroes(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("short.img");
        byte[] data = random(100, 3);
        Files.write(file, data);
        try (FileStorage s = open(file, StorageOptions.readOnly(), nativeAccess)) {
            ByteBuffer dst = ByteBuffer.allocate(4096);
            Arrays.fill(dst.array(), (byte) 0x55);
            s.read(dst, 50);
            assertFalse(dst.hasRemaining());
            assertArrayEquals(Arrays.copyOfRange(data, 50, 100), Arrays.copyOf(dst.array(), 50));
            assertZero(Arrays.copyOfRange(dst.array(), 50, 4096));
            ByteBuffer far = ByteBuffer.allocateDirect(3 * MIB);
            s.read(far, 1L << 40);
            assertFalse(far.hasRemaining());
            byte[] got = new byte[far.capacity()];
            far.flip().get(got);
            assertZero(got);
            assertEquals(100, s.size());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void readOnlyStorageRefusesWrites(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("ro.img");
        byte[] data = random(8192, 4);
        Files.write(file, data);
        try (FileStorage s = open(file, StorageOptions.readOnly(), nativeAccess)) {
            List<Executable> writes = List.of(
                    () -> s.write(ByteBuffer.allocate(10), 0),
                    () -> s.writeZeroes(0, 4096, true),
                    () -> s.writeZeroes(0, 4096, false),
                    () -> s.discard(0, 4096),
                    () -> s.resize(0, Preallocation.OFF));
            for (Executable w : writes) {
                ReadOnlyImageException e = assertThrows(ReadOnlyImageException.class, w);
                assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
                assertEquals(file.toString(), e.resource());
            }
        }
        assertArrayEquals(data, Files.readAllBytes(file));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void directoryIsAClearError(boolean nativeAccess) {
        for (StorageOptions o : List.of(StorageOptions.readOnly(), StorageOptions.readWrite(), StorageOptions.createNew())) {
            ImageException e = assertThrows(ImageException.class, () -> open(dir, o, nativeAccess));
            assertEquals(dir.toString() + ": Is a directory", e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aFifoIsRefusedWithoutBlocking(boolean nativeAccess) throws Exception {
        Path fifo = dir.resolve("fifo");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
        assertEquals(0, mkfifo.waitFor(), "mkfifo");
        for (StorageOptions o : List.of(StorageOptions.readOnly(), StorageOptions.readWrite())) {
            ImageException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                    () -> assertThrows(ImageException.class, () -> open(fifo, o, nativeAccess)));
            assertTrue(e.getMessage().startsWith(fifo + ": not a regular file"), e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void missingFileIsNoSuchFile(boolean nativeAccess) {
        Path missing = dir.resolve("missing.img");
        for (StorageOptions o : List.of(StorageOptions.readOnly(), StorageOptions.readWrite())) {
            NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> open(missing, o, nativeAccess));
            assertEquals(missing.toString(), e.getFile());
        }
        Path deep = dir.resolve("no/such/dir/x.img");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> create(deep, nativeAccess));
        assertEquals(deep.toString(), e.getFile());
        assertFalse(Files.exists(missing));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void createTruncatesAnExistingFile(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("old.img");
        Files.write(file, random(5000, 5));
        try (FileStorage s = create(file, nativeAccess)) {
            assertEquals(0, s.size());
        }
        assertEquals(0, Files.size(file));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void discardPunchesHolesWhereTheFileSystemCan(boolean nativeAccess) throws IOException {
        boolean punch = nativeAccess && Probe.punchHole(dir);
        Path file = dir.resolve("discard.img");
        byte[] data = random(MIB, 6);
        try (FileStorage s = create(file, nativeAccess)) {
            write(s, 0, data);
            s.sync();
            long before = s.allocatedSize().orElse(-1);
            s.discard(256 * KIB, 512 * KIB);
            s.discard(2 * MIB, MIB); // past the end: no effect, no growth
            s.discard(0, 0);
            assertEquals(MIB, s.size());
            assertEquals(punch, s.punchesHoles());
            byte[] middle = read(s, 256 * KIB, 512 * KIB);
            if (punch) {
                assertZero(middle);
                long after = s.allocatedSize().orElseThrow();
                assertTrue(after <= before - 256 * KIB, "allocated " + before + " -> " + after);
            } else {
                assertArrayEquals(Arrays.copyOfRange(data, 256 * KIB, 768 * KIB), middle);
                assertEquals(nativeAccess && LibC.available(), s.allocatedSize().isPresent());
            }
            assertArrayEquals(Arrays.copyOf(data, 256 * KIB), read(s, 0, 256 * KIB));
            assertArrayEquals(Arrays.copyOfRange(data, 768 * KIB, MIB), read(s, 768 * KIB, 256 * KIB));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void writeZeroesZeroesTheRangeAndGrowsLikeAWrite(boolean nativeAccess) throws IOException {
        for (boolean mayUnmap : new boolean[] {true, false}) {
            Path file = dir.resolve("zero-" + mayUnmap + ".img");
            byte[] data = random(256 * KIB, 7);
            try (FileStorage s = create(file, nativeAccess)) {
                write(s, 0, data);
                s.writeZeroes(10000, 50000, mayUnmap);
                assertEquals(data.length, s.size());
                assertArrayEquals(Arrays.copyOf(data, 10000), read(s, 0, 10000));
                assertZero(read(s, 10000, 50000));
                assertArrayEquals(Arrays.copyOfRange(data, 60000, 200 * KIB), read(s, 60000, 200 * KIB - 60000));

                s.writeZeroes(200 * KIB, 100 * KIB, mayUnmap); // straddles the end
                assertEquals(300 * KIB, s.size());
                assertZero(read(s, 200 * KIB, 100 * KIB));
                assertArrayEquals(Arrays.copyOfRange(data, 60000, 200 * KIB), read(s, 60000, 200 * KIB - 60000));

                s.writeZeroes(400 * KIB + 5, 10 * KIB, mayUnmap); // wholly past the end
                assertEquals(410 * KIB + 5, s.size());
                assertZero(read(s, 300 * KIB, 110 * KIB + 5));

                s.writeZeroes(MIB, 0, mayUnmap);
                assertEquals(410 * KIB + 5, s.size());
            }
        }
    }

    @Test
    void writeZeroesWithUnmapDeallocatesAndWithoutKeepsOrAllocates() throws IOException {
        boolean punch = Probe.punchHole(dir);
        Path file = dir.resolve("unmap.img");
        try (FileStorage s = create(file, true)) {
            write(s, 0, random(2 * MIB, 8));
            s.sync();
            long full = s.allocatedSize().orElseThrow();
            s.writeZeroes(0, MIB, true);
            s.sync();
            long unmapped = s.allocatedSize().orElseThrow();
            if (punch) {
                assertTrue(unmapped <= full - MIB, full + " -> " + unmapped);
            } else {
                assertEquals(full, unmapped);
            }
            s.writeZeroes(MIB, MIB, false);
            s.sync();
            // without unmap, the range stays allocated (zero range keeps or reallocates the blocks)
            assertTrue(s.allocatedSize().orElseThrow() >= unmapped - 64 * KIB);
            assertZero(read(s, 0, 2 * MIB));
        }
    }

    @Test
    void refusedCallsFallBackOnceAndStayCorrect() throws IOException {
        Path file = dir.resolve("refused.img");
        byte[] data = random(256 * KIB, 14);
        try (FileStorage s = create(file, true)) {
            write(s, 0, data);
            s.refuse(false, true, false, false); // like tmpfs: punch and fallocate, no zero range
            s.writeZeroes(4096, 8192, false);
            s.writeZeroes(250 * KIB, 10 * KIB, false);
            assertEquals(260 * KIB, s.size());
            assertZero(read(s, 4096, 8192));
            assertZero(read(s, 250 * KIB, 10 * KIB));
            assertArrayEquals(Arrays.copyOfRange(data, 12288, 250 * KIB), read(s, 12288, 250 * KIB - 12288));

            s.refuse(true, true, true, true); // a file system that supports none of it
            assertFalse(s.punchesHoles());
            s.discard(0, 4096); // keeps the data
            assertArrayEquals(Arrays.copyOf(data, 4096), read(s, 0, 4096));
            s.writeZeroes(0, 100, true); // zero buffers
            s.writeZeroes(300 * KIB, 3 * MIB + 7, true);
            assertEquals(300 * KIB + 3 * MIB + 7, s.size());
            assertZero(read(s, 0, 100));
            assertZero(read(s, 260 * KIB, 40 * KIB + 3 * MIB + 7));
            assertEquals(new StorageExtent(0, s.size(), true), s.dataExtent(0, Long.MAX_VALUE));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void dataExtentSeesHolesAndData(boolean nativeAccess) throws IOException {
        boolean seek = nativeAccess && Probe.seekData(dir);
        Path file = dir.resolve("sparse.img");
        long size = 8 * MIB;
        try (FileStorage s = create(file, nativeAccess)) {
            s.resize(size, Preallocation.OFF);
            write(s, MIB, random(64 * KIB, 9));
            s.sync();
            if (seek) {
                assertEquals(new StorageExtent(0, MIB, false), s.dataExtent(0, size));
                assertEquals(new StorageExtent(MIB, 64 * KIB, true), s.dataExtent(MIB, size));
                StorageExtent tail = s.dataExtent(MIB + 64 * KIB, size - MIB - 64 * KIB);
                assertEquals(new StorageExtent(MIB + 64 * KIB, size - MIB - 64 * KIB, false), tail);
                assertEquals(new StorageExtent(4096, 4096, false), s.dataExtent(4096, 4096));
                assertEquals(new StorageExtent(MIB + 4096, 8192, true), s.dataExtent(MIB + 4096, 8192));
            } else {
                assertEquals(new StorageExtent(0, size, true), s.dataExtent(0, size));
                assertEquals(new StorageExtent(MIB, size - MIB, true), s.dataExtent(MIB, size));
                assertEquals(new StorageExtent(4096, 4096, true), s.dataExtent(4096, 4096));
            }
            assertEquals(new StorageExtent(size, 4096, false), s.dataExtent(size, 4096));
            assertEquals(new StorageExtent(size + 5, 10, false), s.dataExtent(size + 5, 10));
            assertThrows(IllegalArgumentException.class, () -> s.dataExtent(0, 0));
            assertThrows(IllegalArgumentException.class, () -> s.dataExtent(-1, 10));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void resizeGrowsAndShrinks(boolean nativeAccess) throws IOException {
        boolean nat = nativeAccess && LibC.available();
        Path file = dir.resolve("resize.img");
        byte[] data = random(100 * KIB, 10);
        try (FileStorage s = create(file, nativeAccess)) {
            write(s, 0, data);
            s.resize(64 * MIB, Preallocation.OFF);
            assertEquals(64 * MIB, s.size());
            assertZero(read(s, 100 * KIB, MIB));
            assertZero(read(s, 64 * MIB - 4096, 4096));
            if (nat) {
                assertTrue(s.allocatedSize().orElseThrow() < 4 * MIB, "OFF must stay sparse");
            }
            s.resize(50 * KIB, Preallocation.FULL); // shrinking ignores the preallocation mode
            assertEquals(50 * KIB, s.size());
            s.resize(100 * KIB, Preallocation.METADATA);
            assertArrayEquals(Arrays.copyOf(data, 50 * KIB), read(s, 0, 50 * KIB));
            assertZero(read(s, 50 * KIB, 50 * KIB));
            s.resize(100 * KIB, Preallocation.FALLOC); // same size: nothing to do

            s.resize(100 * KIB + 16 * MIB, Preallocation.FULL);
            assertEquals(100 * KIB + 16 * MIB, s.size());
            assertZero(read(s, 100 * KIB, 16 * MIB));
            if (nat) {
                s.sync();
                assertTrue(s.allocatedSize().orElseThrow() >= 16 * MIB, "FULL must allocate");
            }

            long before = s.size();
            if (nat) {
                s.resize(before + 32 * MIB, Preallocation.FALLOC);
                assertEquals(before + 32 * MIB, s.size());
                assertTrue(s.allocatedSize().orElseThrow() >= 48 * MIB, "FALLOC must reserve");
                assertZero(read(s, before, MIB));
            } else {
                UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                        () -> s.resize(before + 32 * MIB, Preallocation.FALLOC));
                assertEquals("falloc preallocation", e.featureName());
                assertEquals(before, s.size());
            }
            s.resize(0, Preallocation.OFF);
            assertEquals(0, s.size());
            assertThrows(IllegalArgumentException.class, () -> s.resize(-1, Preallocation.OFF));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void failuresNameTheFileAndTheOperation(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("big.img");
        try (FileStorage s = create(file, nativeAccess)) {
            IOException e = assertThrows(IOException.class, () -> s.resize(Long.MAX_VALUE, Preallocation.OFF));
            assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
            if (nativeAccess && LibC.available()) {
                assertTrue(e.getMessage().contains("ftruncate to " + Long.MAX_VALUE + " failed: errno 27 (EFBIG"),
                        e.getMessage());
            } else {
                assertTrue(e.getMessage().contains("write at " + (Long.MAX_VALUE - 1) + "+1 failed"), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> s.read(ByteBuffer.allocate(1), -1));
            assertThrows(IllegalArgumentException.class, () -> s.write(ByteBuffer.allocate(2), Long.MAX_VALUE));
        }
    }

    @Test
    void writersConflictWithEveryoneReadersShare() throws IOException {
        Path file = dir.resolve("locked.img");
        byte[] data = random(1000, 11);
        try (FileStorage w = create(file, true)) {
            write(w, 0, data);
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readWrite(), true));
            assertEquals(file + ": Failed to get \"write\" lock. Is another process using the image [" + file + "]?",
                    e.getMessage());
            e = assertThrows(ImageLockedException.class, () -> open(file, StorageOptions.readOnly(), true));
            assertEquals(file + ": Failed to get shared \"write\" lock. Is another process using the image [" + file
                    + "]?", e.getMessage());
            assertThrows(ImageLockedException.class, () -> create(file, true));
            assertEquals(1000, w.size(), "a refused create must not truncate");
            try (FileStorage unlocked = open(file, StorageOptions.readOnly().withLock(false), true)) {
                assertArrayEquals(data, read(unlocked, 0, 1000));
            }
        }
        try (FileStorage r1 = open(file, StorageOptions.readOnly(), true);
                FileStorage r2 = open(file, StorageOptions.readOnly(), true)) {
            assertArrayEquals(data, read(r2, 0, 1000));
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readWrite(), true));
            assertEquals(file.toString(), e.resource());
            assertArrayEquals(data, read(r1, 0, 1000));
        }
        try (FileStorage w = open(file, StorageOptions.readWrite(), true)) {
            assertEquals(1000, w.size()); // every lock was released on close
        }
    }

    @Test
    void portableLockingRefusesASecondWriter() throws IOException {
        Path file = dir.resolve("portable-locked.img");
        try (FileStorage w = create(file, false)) {
            write(w, 0, new byte[10]);
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readWrite(), false));
            assertEquals(file.toString(), e.resource());
        }
        try (FileStorage r1 = open(file, StorageOptions.readOnly(), false);
                FileStorage r2 = open(file, StorageOptions.readOnly(), false)) {
            assertEquals(10, r1.size());
            assertEquals(10, r2.size());
            assertThrows(ImageLockedException.class, () -> open(file, StorageOptions.readWrite(), false));
        }
        try (FileStorage w = open(file, StorageOptions.readWrite(), false)) {
            assertEquals(10, w.size());
        }
    }

    @Test
    void resolvesStoredNamesAgainstTheImageDirectory() throws IOException {
        Path sub = Files.createDirectories(dir.resolve("images"));
        Path file = sub.resolve("top.qcow2");
        try (FileStorage s = create(file, true)) {
            assertEquals(Optional.of(StorageLocation.file(sub.resolve("base.img"))), s.resolve("base.img"));
            assertEquals(Optional.of(StorageLocation.file(dir.resolve("other/base.img"))),
                    s.resolve("../other/./base.img"));
            assertEquals(Optional.of(new StorageLocation("file", "/abs/base.img")), s.resolve("/abs/base.img"));
            // never parsed as a protocol or an option string
            assertEquals(Optional.of(StorageLocation.file(sub.resolve("nbd:localhost:10809"))),
                    s.resolve("nbd:localhost:10809"));
            assertEquals(Optional.of(StorageLocation.file(sub.resolve("json:{\"driver\":\"file\"}"))),
                    s.resolve("json:{\"driver\":\"file\"}"));
            assertEquals(Optional.empty(), s.resolve(""));
            assertEquals(Optional.empty(), s.resolve("a\0b"));
            assertThrows(NullPointerException.class, () -> s.resolve(null));
            assertEquals(file.toString(), s.name());
            assertEquals(StorageLocation.file(file), s.location());
        }
    }

    @Test
    void directIOIsAlignedOrRefusedClearly() throws IOException {
        Path file = dir.resolve("direct.img");
        StorageOptions options = StorageOptions.createNew().withDirectIO(true);
        if (!Probe.directIO(dir)) {
            UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                    () -> open(file, options, true));
            assertEquals("direct I/O", e.featureName());
            assertTrue(e.getMessage().contains("O_DIRECT"), e.getMessage());
            return;
        }
        byte[] data = random(8192, 12);
        try (FileStorage s = open(file, options, true)) {
            assertEquals(4096, s.requestAlignment());
            assertEquals(4096, s.memoryAlignment());
            ByteBuffer aligned = ByteBuffer.allocateDirect(8192 + 4096).alignedSlice(4096);
            aligned.put(data).flip();
            s.write(aligned, 4096);
            assertEquals(12288, s.size());
            s.write(ByteBuffer.wrap(data), 16384); // heap buffer: bounced internally
            assertArrayEquals(data, read(s, 4096, 8192));
            assertArrayEquals(data, read(s, 16384, 8192));
            assertThrows(IllegalArgumentException.class, () -> s.read(ByteBuffer.allocateDirect(4096), 100));
            assertThrows(IllegalArgumentException.class, () -> s.write(ByteBuffer.allocateDirect(100), 0));

            Storage a = AlignedStorage.wrap(s);
            a.write(ByteBuffer.wrap(data, 0, 1000), 24577);
            assertArrayEquals(Arrays.copyOf(data, 1000), read(a, 24577, 1000));
            assertArrayEquals(data, read(a, 16384, 8192));
            assertEquals(28672, s.size());

            s.resize(30000, Preallocation.OFF); // unaligned end
            ByteBuffer tail = ByteBuffer.allocateDirect(8192).alignedSlice(4096);
            s.read(tail, 28672); // the short read at the unaligned end of the file zero-fills
            assertFalse(tail.hasRemaining());
            s.resize(30000 + 3 * MIB + 5, Preallocation.FULL); // unaligned edges, aligned middle
            assertEquals(30000 + 3 * MIB + 5, s.size());
            assertZero(read(a, 30000, 3 * MIB + 5));
            s.writeZeroes(4096, 8192, false);
            s.writeZeroes(100, 50, false); // writeZeroes itself takes any range
            assertZero(read(a, 100, 50));
            assertZero(read(s, 4096, 8192));
            assertArrayEquals(data, read(s, 16384, 8192));
            s.sync();
        }
        // the portable path cannot do direct I/O
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> open(file, options, false));
        assertEquals("direct I/O", e.featureName());
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void closedStorageRefusesRequests(boolean nativeAccess) throws IOException {
        Path file = dir.resolve("closed.img");
        FileStorage s = create(file, nativeAccess);
        write(s, 0, new byte[100]);
        s.close();
        s.close();
        for (Executable op : List.<Executable>of(() -> s.read(ByteBuffer.allocate(10), 0),
                () -> s.write(ByteBuffer.allocate(10), 0), s::size, s::sync, s::allocatedSize,
                () -> s.dataExtent(0, 10), () -> s.writeZeroes(0, 10, false))) {
            IOException e = assertThrows(IOException.class, op);
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void anInterruptDoesNotBreakTheStorageForOthers(boolean nativeAccess) throws Exception {
        Path file = dir.resolve("interrupt.img");
        byte[] data = random(10000, 13);
        try (FileStorage s = create(file, nativeAccess)) {
            write(s, 0, data);
            Thread.currentThread().interrupt();
            try {
                InterruptedIOException e = assertThrows(InterruptedIOException.class,
                        () -> s.read(ByteBuffer.allocate(100), 0));
                assertTrue(e.getMessage().startsWith(file + ": read"), e.getMessage());
            } finally {
                assertTrue(Thread.interrupted(), "the interrupt stays set");
            }
            if (s.nativeAccess()) {
                assertArrayEquals(data, read(s, 0, data.length)); // reopened
            } else {
                IOException e = assertThrows(IOException.class, () -> read(s, 0, 10));
                assertTrue(e.getMessage().contains("interrupt"), e.getMessage());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void concurrentWritesToDisjointRanges(boolean nativeAccess) throws Exception {
        Path file = dir.resolve("concurrent.img");
        int threads = 16;
        int chunk = 64 * KIB;
        try (FileStorage s = create(file, nativeAccess);
                ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                done.add(pool.submit(() -> {
                    for (int round = 0; round < 8; round++) {
                        long off = (long) (round * threads + id) * chunk;
                        write(s, off, random(chunk, off));
                        if (round % 3 == 2) {
                            s.writeZeroes(off, chunk / 2, round % 2 == 0);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            for (int i = 0; i < threads * 8; i++) {
                long off = (long) i * chunk;
                byte[] expect = random(chunk, off);
                if ((i / threads) % 3 == 2) {
                    Arrays.fill(expect, 0, chunk / 2, (byte) 0);
                }
                assertArrayEquals(expect, read(s, off, chunk), "chunk " + i);
            }
        }
    }

    @Test
    void toStringNamesTheFile() throws IOException {
        Path file = dir.resolve("named.img");
        try (FileStorage s = create(file, true)) {
            assertTrue(s.toString().contains(file.toString()));
            assertInstanceOf(Storage.class, s);
        }
    }
}
