package imago.storage.file.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link FileStorage#copyFrom}: with native access through {@code copy_file_range}, without it (and for what the
 * kernel leaves) through a buffer; either way bit for bit what a read and a write give.
 */
class FileStorageCopyTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private byte[] random(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    private FileStorage open(Path file, StorageOptions options, boolean nativeAccess) throws IOException {
        return FileStorage.open(StorageLocation.file(file), options, nativeAccess);
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void copiesBetweenFilesBitForBit(boolean nativeAccess) throws IOException {
        byte[] source = random(3 * MIB + 777, 1);
        Files.write(dir.resolve("in"), source);
        byte[] target = random(MIB, 2);
        Files.write(dir.resolve("out"), target);
        try (FileStorage in = open(dir.resolve("in"), StorageOptions.readOnly(), nativeAccess);
                FileStorage out = open(dir.resolve("out"), StorageOptions.readWrite(), nativeAccess)) {
            // into the middle of the target and on past its end, which grows it
            out.copyFrom(in, 1000, 2 * MIB + 5, 4096 + 3);
        }
        byte[] expected = Arrays.copyOf(target, 4096 + 3 + 2 * MIB + 5);
        System.arraycopy(source, 1000, expected, 4096 + 3, 2 * MIB + 5);
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("out")));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void bytesPastTheSourceEndAreCopiedAsZeroes(boolean nativeAccess) throws IOException {
        byte[] source = random(10_000, 3);
        Files.write(dir.resolve("in"), source);
        byte[] target = new byte[64 * 1024];
        Arrays.fill(target, (byte) 0xff);
        Files.write(dir.resolve("out"), target);
        try (FileStorage in = open(dir.resolve("in"), StorageOptions.readOnly(), nativeAccess);
                FileStorage out = open(dir.resolve("out"), StorageOptions.readWrite(), nativeAccess)) {
            out.copyFrom(in, 8000, 20_000, 100);
        }
        byte[] expected = target.clone();
        System.arraycopy(source, 8000, expected, 100, 2000);
        Arrays.fill(expected, 2100, 20_100, (byte) 0);
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("out")));
    }

    @Test
    void copiesWithinOneFile() throws IOException {
        byte[] bytes = random(2 * MIB, 4);
        Files.write(dir.resolve("f"), bytes);
        try (FileStorage f = open(dir.resolve("f"), StorageOptions.readWrite(), true)) {
            f.copyFrom(f, 0, MIB, MIB + 512);
        }
        byte[] expected = Arrays.copyOf(bytes, 2 * MIB + 512);
        System.arraycopy(bytes, 0, expected, MIB + 512, MIB);
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("f")));
    }

    @Test
    void aReadOnlyTargetRefuses() throws IOException {
        Files.write(dir.resolve("in"), random(4096, 5));
        Files.write(dir.resolve("out"), new byte[4096]);
        try (FileStorage in = open(dir.resolve("in"), StorageOptions.readOnly(), true);
                FileStorage out = open(dir.resolve("out"), StorageOptions.readOnly(), true)) {
            assertThrows(ReadOnlyImageException.class, () -> out.copyFrom(in, 0, 4096, 0));
        }
    }

    @Test
    void theKernelCopiesAtTheGivenOffsets() throws IOException, ErrnoException {
        assumeTrue(LibC.available(), "no native access: " + LibC.unavailableReason());
        assumeTrue(LibcCopy.available(), "libc has no copy_file_range");
        byte[] source = random(100_000, 6);
        Files.write(dir.resolve("in"), source);
        Files.write(dir.resolve("out"), new byte[0]);
        try (FileStorage in = open(dir.resolve("in"), StorageOptions.readOnly(), true);
                FileStorage out = open(dir.resolve("out"), StorageOptions.readWrite(), true)) {
            long n = LibcCopy.copyFileRange(in.fd(), 10, out.fd(), 20, 50_000);
            assertEquals(50_000, n);
            assertEquals(0, LibcCopy.copyFileRange(in.fd(), 100_000, out.fd(), 0, 10), "at the source's end");
            ByteBuffer copied = ByteBuffer.allocate(50_000);
            out.read(copied, 20);
            assertArrayEquals(Arrays.copyOfRange(source, 10, 50_010), copied.array());
        }
    }
}
