package imago.moduletests.fuzz;

import imago.api.Extent;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.FileSystemException;
import java.util.Optional;

/**
 * The contract every fuzz target checks: hostile bytes get a clear, specific exception and never a
 * crash, a hang or unbounded memory.
 *
 * <ul>
 * <li>Allowed: the {@link ImageException} family (corrupt, unsupported feature, limit, unknown
 * format, open denied...), and {@link FileSystemException}s such as
 * {@link java.nio.file.NoSuchFileException} for a backing or data file that the image names and that
 * does not exist.</li>
 * <li>A finding: anything else. A bare {@link IOException} (not specific), {@link RuntimeException}s
 * ({@code NullPointerException}, {@code ArithmeticException}, {@code IndexOutOfBoundsException},
 * {@code IllegalStateException} from the mapping checks of the I/O path, and
 * {@code IllegalArgumentException} too: the targets make only valid calls, so an
 * {@code IllegalArgumentException} means that a driver let a header field reach an argument),
 * and {@link Error}s ({@code OutOfMemoryError}, {@code StackOverflowError}).</li>
 * <li>Hangs are caught by libFuzzer's per-input timeout (from
 * {@code junit.jupiter.execution.timeout.testtemplate.method.default} in
 * {@code junit-platform.properties}), memory by the test JVM's {@code -Xmx}.</li>
 * </ul>
 *
 * <p>Targets do a bounded amount of work per input whatever sizes the image claims: at most
 * {@link #MAX_EXTENTS} extents per layer and a few reads of at most {@link #MAX_READ} bytes.
 */
final class FuzzContract {
    /** Extents and mappings walked per layer. */
    static final int MAX_EXTENTS = 4096;
    /** The largest single read. */
    static final int MAX_READ = 64 * 1024;
    /** Layers of a backing chain walked. */
    static final int MAX_LAYERS = 8;

    private FuzzContract() {
    }

    /** Returns when {@code t} is an allowed reaction to bad input, else throws the finding. */
    static void expected(Throwable t) {
        if (t instanceof ImageException || t instanceof FileSystemException) {
            return;
        }
        throw new AssertionError("bad input must be refused with an ImageException, not with " + t, t);
    }

    /**
     * The whole body of a read-only target: {@code data} as an in-memory image named {@code name}, opened read-only
     * as {@code format}, {@linkplain #walk walked}, any failure checked to be {@linkplain #expected expected}.
     */
    static void openAndWalk(byte[] data, String name, String format) {
        imago.storage.memory.MemoryStorage.of(name, data).close();
        try (Image image = imago.probe.Imago.opener().location(imago.api.StorageLocation.memory(name)).format(format)
                .open()) {
            walk(image);
        } catch (IOException | RuntimeException e) {
            expected(e);
        } finally {
            imago.storage.memory.MemoryStorage.delete(name);
        }
    }

    /**
     * The whole body of a writable format's target: {@code data} as an in-memory image named {@code name}, opened
     * read-only as {@code format} and {@linkplain #walk walked}, then opened writable, written once (1536 zero bytes
     * around the middle, flushed) and walked again; any failure checked to be {@linkplain #expected expected}.
     */
    static void openWalkAndWrite(byte[] data, String name, String format) {
        imago.storage.memory.MemoryStorage.of(name, data).close();
        try {
            try (Image image = imago.probe.Imago.opener().location(imago.api.StorageLocation.memory(name))
                    .format(format).open()) {
                walk(image);
            }
            try (Image image = imago.probe.Imago.opener().location(imago.api.StorageLocation.memory(name))
                    .format(format).writable(true).open()) {
                writeAndWalk(image, 1536, 700);
            }
        } catch (IOException | RuntimeException e) {
            expected(e);
        } finally {
            imago.storage.memory.MemoryStorage.delete(name);
        }
    }

    /**
     * Writes {@code length} zero bytes (at most the image's size) from {@code before} bytes below the middle (or from
     * 0), across sector boundaries, flushes, and {@linkplain #walk walks} the image.
     */
    static void writeAndWalk(Image image, int length, int before) throws IOException {
        if (image.size() > 0) {
            image.write(ByteBuffer.allocate((int) Math.min(length, image.size())), image.size() / 2
                    - Math.min(image.size() / 2, before));
            image.flush();
        }
        walk(image);
    }

    /** Reads what a user of the image would: mappings, extents, a few ranges, info, down the chain. */
    static void walk(Image top) throws IOException {
        Image image = top;
        for (int layer = 0; layer < MAX_LAYERS && image != null; layer++) {
            walkLayer(image);
            Optional<Image> backing = image.backing();
            image = backing.orElse(null);
        }
    }

    private static void walkLayer(Image image) throws IOException {
        long size = image.size();
        if (size < 0) {
            throw new AssertionError(image.name() + ": negative size " + size);
        }
        image.info();
        if (size == 0) {
            return;
        }
        long pos = 0;
        for (int i = 0; i < MAX_EXTENTS && pos < size; i++) {
            Mapping m = image.mapping(pos, size - pos);
            if (m.offset() != pos || m.length() < 1 || m.length() > size - pos) {
                throw new AssertionError(image.name() + ": mapping " + m + " for offset " + pos);
            }
            pos += m.length();
        }
        pos = 0;
        for (int i = 0; i < MAX_EXTENTS && pos < size; i++) {
            Extent e = image.extent(pos, size - pos);
            if (e.offset() != pos || e.length() > size - pos) {
                throw new AssertionError(image.name() + ": extent " + e + " for offset " + pos);
            }
            if (i < 64) {
                read(image, pos, Math.min(e.length(), 4096));
            }
            pos += e.length();
        }
        read(image, 0, Math.min(size, MAX_READ));
        read(image, size - Math.min(size, MAX_READ), Math.min(size, MAX_READ));
        read(image, size / 2, Math.min(size - size / 2, 4096));
    }

    private static void read(Image image, long offset, long length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) length);
        image.read(b, offset);
        if (b.hasRemaining()) {
            throw new AssertionError(image.name() + ": short read of " + length + " bytes at " + offset);
        }
    }
}
