package imago.storage.file.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What the file system under a test directory supports, asked directly through {@link LibC} (not
 * through {@link FileStorage}), so that tests assert the native behaviour where it exists and the
 * fallback where it does not, instead of skipping.
 */
final class Probe {
    private Probe() {
    }

    /** Whether this platform should have native access: Linux on x86_64 or aarch64. */
    static boolean expectNative() {
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        return os.startsWith("Linux") && (arch.equals("amd64") || arch.equals("aarch64"));
    }

    /** Whether {@code fallocate(PUNCH_HOLE)} works in {@code dir}. */
    static boolean punchHole(Path dir) throws IOException {
        if (!LibC.available()) {
            return false;
        }
        Path file = Files.createTempFile(dir, "probe", ".punch");
        Files.write(file, new byte[65536]);
        int fd = open(file, LibC.O_RDWR);
        try {
            LibcSpace.fallocate(fd, LibcSpace.FALLOC_FL_PUNCH_HOLE | LibcSpace.FALLOC_FL_KEEP_SIZE, 0, 65536);
            return true;
        } catch (ErrnoException e) {
            return false;
        } finally {
            close(fd);
            Files.delete(file);
        }
    }

    /** Whether {@code lseek(SEEK_DATA)} in {@code dir} tells holes from data (not just "all data"). */
    static boolean seekData(Path dir) throws IOException {
        if (!LibC.available()) {
            return false;
        }
        Path file = Files.createTempFile(dir, "probe", ".seek");
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {1}), 1 << 20);
        }
        int fd = open(file, LibC.O_RDONLY);
        try {
            return LibC.lseek(fd, 0, LibC.SEEK_DATA) > 0;
        } catch (ErrnoException e) {
            return false;
        } finally {
            close(fd);
            Files.delete(file);
        }
    }

    /** Whether {@code open(O_DIRECT)} works in {@code dir}. */
    static boolean directIO(Path dir) throws IOException {
        if (!LibC.available()) {
            return false;
        }
        Path file = Files.createTempFile(dir, "probe", ".direct");
        try {
            int fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC | LibC.oDirect(), 0);
            close(fd);
            return true;
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EINVAL) {
                return false;
            }
            throw new IOException(file + ": " + e.getMessage());
        } finally {
            Files.delete(file);
        }
    }

    private static int open(Path file, int flags) throws IOException {
        try {
            return LibC.open(file.toString(), flags | LibC.O_CLOEXEC, 0);
        } catch (ErrnoException e) {
            throw new IOException(file + ": " + e.getMessage());
        }
    }

    private static void close(int fd) throws IOException {
        try {
            LibC.close(fd);
        } catch (ErrnoException e) {
            throw new IOException(e.getMessage());
        }
    }
}
