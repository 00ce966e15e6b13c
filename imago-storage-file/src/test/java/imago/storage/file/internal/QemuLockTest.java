package imago.storage.file.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import imago.api.ImageLockedException;
import imago.api.StorageLocation;
import imago.api.spi.StorageOptions;
import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * imago's locks against qemu's own: the lock bytes of QEMU 7.2's {@code block/file-posix.c}, checked
 * directly and against qemu-img and qemu-io. Without qemu-img and qemu-io the tests that run them are
 * skipped, unless {@code IMAGO_REQUIRE_QEMU=1} is set, in which case they fail.
 */
final class QemuLockTest {
    private static final Set<Integer> WRITER_BYTES = Set.of(100, 101, 103, 201, 203);
    private static final Set<Integer> READER_BYTES = Set.of(100, 201, 203);

    @TempDir
    Path dir;

    private static FileStorage open(Path file, StorageOptions options) throws IOException {
        return FileStorage.open(StorageLocation.file(file), options, true);
    }

    private static void requireNative() {
        if (!LibC.available()) {
            if (Probe.expectNative()) {
                fail("native access should be available: " + LibC.unavailableReason());
            }
            Assumptions.abort("no native access: " + LibC.unavailableReason());
        }
    }

    private static String tool(String name) {
        requireNative();
        return (name.equals("qemu-img") ? Qemu.img() : Qemu.io()).toString();
    }

    private Qemu.Output run(String... command) {
        return Qemu.run(dir, (Object[]) command);
    }

    /** The bytes among qemu's lock bytes that another open file description holds a lock on. */
    private static Set<Integer> lockedBytes(Path file) throws Exception {
        int probe = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        try {
            Set<Integer> locked = new TreeSet<>();
            for (int base : new int[] {ImageLocks.LOCK_PERM_BASE, ImageLocks.LOCK_SHARED_BASE}) {
                for (int i = 0; i < 8; i++) {
                    if (LibcLocks.ofdLocked(probe, base + i, 1)) {
                        locked.add(base + i);
                    }
                }
            }
            return locked;
        } finally {
            LibC.close(probe);
        }
    }

    /**
     * Starts {@code qemu-io -c 'sleep 600000'} on {@code file} and waits until it holds its locks, which it then keeps
     * until {@link #stop} ends it: qemu-io's sleep counts milliseconds of wall-clock time from its start, so a short
     * one (this was 3 s) can end, and take the locks with it, while a busy machine is still running the checks.
     */
    private Process holdWithQemuIo(String format, Path file) throws Exception {
        Path err = Files.createTempFile(dir, "qemu-io", ".txt");
        Process p = new ProcessBuilder(tool("qemu-io"), "-f", format, "-c", "sleep 600000", file.toString())
                .directory(dir.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(err.toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!lockedBytes(file).contains(101)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                p.destroyForcibly();
                fail("qemu-io did not lock " + file + ": " + Files.readString(err, StandardCharsets.UTF_8));
            }
            Thread.sleep(10);
        }
        return p;
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroy();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
        }
    }

    private Path qcow2(String name) throws Exception {
        Path file = dir.resolve(name);
        Qemu.Output o = run(tool("qemu-img"), "create", "-q", "-f", "qcow2", file.toString(), "1M");
        assertEquals(0, o.status(), o.err());
        return file;
    }

    private Path raw(String name) throws IOException {
        Path file = dir.resolve(name);
        Files.write(file, new byte[65536]);
        return file;
    }

    private static String hint(Path file) {
        return ". Is another process using the image [" + file + "]?";
    }

    @Test
    void takesQemusLockBytes() throws Exception {
        requireNative();
        Path file = raw("bytes.img");
        try (FileStorage w = open(file, StorageOptions.readWrite())) {
            assertEquals(new TreeSet<>(WRITER_BYTES), lockedBytes(file));
            w.write(ByteBuffer.wrap(new byte[] {1}), 100); // the lock bytes are ordinary data too
        }
        assertEquals(Set.of(), lockedBytes(file), "close releases every lock");
        try (FileStorage r2 = open(file, StorageOptions.readOnly())) {
            try (FileStorage r1 = open(file, StorageOptions.readOnly())) {
                assertEquals(new TreeSet<>(READER_BYTES), lockedBytes(file));
                assertEquals(65536, r1.size());
            }
            assertEquals(new TreeSet<>(READER_BYTES), lockedBytes(file), "the other reader keeps its locks");
            assertEquals(65536, r2.size());
        }
        try (FileStorage _ = open(file, StorageOptions.readWrite().withLock(false))) {
            assertEquals(Set.of(), lockedBytes(file));
        }
        try (FileStorage _ = open(file, StorageOptions.readWrite())) {
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readWrite()));
            assertEquals(file + ": Failed to get \"write\" lock" + hint(file), e.getMessage());
            assertEquals(new TreeSet<>(WRITER_BYTES), lockedBytes(file), "a refused open leaves no lock behind");
        }
    }

    /** A raw image's open shares every permission and uses no resize, as qemu-io's open of a raw image. */
    @Test
    void sharedWritesTakeQemusRawBytes() throws Exception {
        Path file = raw("shared.img");
        Process p = holdWithQemuIo("raw", file);
        try (FileStorage w1 = open(file, StorageOptions.readWrite().withSharedWrites(true));
                FileStorage w2 = open(file, StorageOptions.readWrite().withSharedWrites(true));
                FileStorage r = open(file, StorageOptions.readOnly().withSharedWrites(true))) {
            assertEquals(new TreeSet<>(Set.of(100, 101)), lockedBytes(file));
            assertEquals(65536, w1.size() + w2.size() - r.size());
            // one that keeps writers out is refused while writers hold the file
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readOnly()));
            assertEquals(file + ": Failed to get shared \"write\" lock" + hint(file), e.getMessage());
        } finally {
            stop(p);
        }
        try (FileStorage _ = open(file, StorageOptions.readOnly())) {
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(file, StorageOptions.readWrite().withSharedWrites(true)));
            assertEquals(file + ": Failed to get \"write\" lock" + hint(file), e.getMessage());
            try (FileStorage _ = open(file, StorageOptions.readOnly().withSharedWrites(true))) {
                assertEquals(new TreeSet<>(READER_BYTES), lockedBytes(file), "readers share the file");
            }
        }
    }

    @Test
    void qemuImgInfoRefusesAnImageImagoWritesAndSharesOneItReads() throws Exception {
        Path file = qcow2("info.qcow2");
        String qemuImg = tool("qemu-img");
        try (FileStorage _ = open(file, StorageOptions.readWrite())) {
            Qemu.Output o = run(qemuImg, "info", file.toString());
            assertNotEquals(0, o.status());
            assertTrue(o.err().contains("Failed to get shared \"write\" lock"), o.err());
            assertTrue(o.err().contains("Is another process using the image"), o.err());
            assertEquals(0, run(qemuImg, "info", "-U", file.toString()).status(), "-U (force share) ignores locks");
        }
        try (FileStorage _ = open(file, StorageOptions.readOnly());
                FileStorage _ = open(file, StorageOptions.readOnly())) {
            Qemu.Output o = run(qemuImg, "info", file.toString());
            assertEquals(0, o.status(), o.err());
        }
    }

    @Test
    void qemuIoRefusesAnImageImagoUses() throws Exception {
        Path file = qcow2("io.qcow2");
        String qemuIo = tool("qemu-io");
        try (FileStorage _ = open(file, StorageOptions.readOnly())) {
            Qemu.Output o = run(qemuIo, "-f", "qcow2", "-c", "sleep 0", file.toString());
            assertNotEquals(0, o.status());
            assertTrue(o.err().contains("Failed to get \"write\" lock"), o.err());
            // a read-only qemu-io shares the image with an imago reader
            o = run(qemuIo, "-r", "-f", "qcow2", "-c", "sleep 0", file.toString());
            assertEquals(0, o.status(), o.err());
        }
        try (FileStorage _ = open(file, StorageOptions.readWrite())) {
            Qemu.Output o = run(qemuIo, "-f", "raw", "-c", "sleep 0", file.toString());
            assertNotEquals(0, o.status());
            assertTrue(o.err().contains("Failed to get \"write\" lock"), o.err());
        }
        Qemu.Output o = run(qemuIo, "-f", "qcow2", "-c", "sleep 0", file.toString());
        assertEquals(0, o.status(), "imago released its locks: " + o.err());
    }

    @Test
    void imagoRefusesAnImageQemuIoWrites() throws Exception {
        Path rawFile = raw("held.img");
        Process p = holdWithQemuIo("raw", rawFile);
        try {
            // qemu's raw driver shares everything, so only our own refusal to share "write" conflicts
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(rawFile, StorageOptions.readWrite()));
            assertEquals(rawFile + ": Failed to get shared \"write\" lock" + hint(rawFile), e.getMessage());
            e = assertThrows(ImageLockedException.class, () -> open(rawFile, StorageOptions.readOnly()));
            assertEquals(rawFile + ": Failed to get shared \"write\" lock" + hint(rawFile), e.getMessage());
            try (FileStorage unlocked = open(rawFile, StorageOptions.readOnly().withLock(false))) {
                assertEquals(65536, unlocked.size());
            }
            assertTrue(p.isAlive(), "qemu-io held its locks through the checks");
        } finally {
            stop(p);
        }

        Path qcow2File = qcow2("held.qcow2");
        p = holdWithQemuIo("qcow2", qcow2File);
        try {
            // qemu's qcow2 driver does not share "write": a writer meets that first
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open(qcow2File, StorageOptions.readWrite()));
            assertEquals(qcow2File + ": Failed to get \"write\" lock" + hint(qcow2File), e.getMessage());
            e = assertThrows(ImageLockedException.class, () -> open(qcow2File, StorageOptions.readOnly()));
            assertEquals(qcow2File + ": Failed to get shared \"write\" lock" + hint(qcow2File), e.getMessage());
            assertTrue(p.isAlive(), "qemu-io held its locks through the checks");
        } finally {
            stop(p);
        }
        try (FileStorage _ = open(qcow2File, StorageOptions.readWrite())) {
            assertEquals(new TreeSet<>(WRITER_BYTES), lockedBytes(qcow2File), "qemu-io's locks went with it");
        }
    }

    @Test
    void aPortableWriterInThisJvmKeepsANativeOpenOut() throws Exception {
        requireNative();
        Path file = raw("mixed.img");
        List<FileStorage> open = new ArrayList<>();
        try (FileStorage _ = FileStorage.open(StorageLocation.file(file), StorageOptions.readWrite(), false)) {
            // FileChannel.lock holds a whole-file POSIX write lock: the lock bytes cannot be taken
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> open.add(open(file, StorageOptions.readOnly())));
            assertEquals(file + ": Failed to lock byte 100" + hint(file), e.getMessage());
        }
        assertEquals(List.of(), open);
    }

    @Test
    void theFlockFallbackExcludesWritersAndSharesReaders() throws Exception {
        requireNative();
        Path file = raw("flock.img");
        String name = file.toString();
        int w = LibC.open(name, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        int r1 = LibC.open(name, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        int r2 = LibC.open(name, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        try {
            ImageLocks.lockFlock(name, w, true);
            ImageLockedException e = assertThrows(ImageLockedException.class,
                    () -> ImageLocks.lockFlock(name, r1, false));
            assertEquals(name + ": Failed to get shared \"write\" lock" + hint(file), e.getMessage());
            LibC.close(w);
            w = -1;
            ImageLocks.lockFlock(name, r1, false);
            ImageLocks.lockFlock(name, r2, false);
            e = assertThrows(ImageLockedException.class, () -> {
                int w2 = LibC.open(name, LibC.O_RDWR | LibC.O_CLOEXEC, 0);
                try {
                    ImageLocks.lockFlock(name, w2, true);
                } finally {
                    LibC.close(w2);
                }
            });
            assertEquals(name + ": Failed to get \"write\" lock" + hint(file), e.getMessage());
        } finally {
            if (w >= 0) {
                LibC.close(w);
            }
            LibC.close(r1);
            LibC.close(r2);
        }
    }
}
