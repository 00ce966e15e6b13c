package imago.probe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageLockedException;
import imago.api.spi.StorageOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's block-layer options given to {@link Opener#option}: what each makes of the storages opened, winning over the
 * opener's setters as QEMU's options win over its flags; bad values refused in QEMU's words.
 */
class BlockOptionsTest {
    @TempDir
    Path dir;

    private final AtomicInteger syncs = new AtomicInteger();
    private final List<StorageOptions> opened = new ArrayList<>();

    private Path raw(String name, byte fill) throws IOException {
        byte[] b = new byte[1 << 20];
        Arrays.fill(b, fill);
        return Files.write(dir.resolve(name), b);
    }

    private Opener opener(Path path) {
        return OpenerTest.recording(path, syncs, opened);
    }

    /** The options the top storage of {@code opener}'s image was opened with. */
    private StorageOptions top(Opener opener) throws IOException {
        opened.clear();
        opener.open().close();
        return opened.getFirst();
    }

    @Test
    void cacheDirectWinsOverTheSetterAndTheFilesOwnWinsOverTheImages() throws IOException {
        Path p = raw("d.raw", (byte) 1);
        assertFalse(top(opener(p).format("raw")).directIO());
        assertTrue(top(opener(p).format("raw").option("cache.direct", "on")).directIO());
        assertTrue(top(opener(p).format("raw").option("file.cache.direct", "yes")).directIO());
        assertFalse(top(opener(p).format("raw").directIO(true).option("cache.direct", "off")).directIO());
        assertFalse(top(opener(p).format("raw").option("cache.direct", "on").option("file.cache.direct", "off"))
                .directIO());
    }

    private int syncsOfAWrite(Opener opener) throws IOException {
        syncs.set(0);
        try (Image image = opener.writable(true).open()) {
            image.write(ByteBuffer.wrap(new byte[] {5}), 0);
            image.flush();
        }
        return syncs.get();
    }

    @Test
    void noFlushSkipsTheSyncs() throws IOException {
        Path p = raw("n.raw", (byte) 1);
        assertTrue(syncsOfAWrite(opener(p).format("raw")) > 0);
        assertEquals(0, syncsOfAWrite(opener(p).format("raw").option("cache.no-flush", "on")));
        assertEquals(0, syncsOfAWrite(opener(p).format("raw").option("file.cache.no-flush", "on")));
        assertTrue(syncsOfAWrite(opener(p).format("raw").noSync(true).option("cache.no-flush", "off")) > 0);
        assertTrue(syncsOfAWrite(opener(p).format("raw").option("cache.no-flush", "on")
                .option("file.cache.no-flush", "off")) > 0);
        assertEquals(5, Files.readAllBytes(p)[0]);
    }

    @Test
    void lockingOffLeavesTheTopFileUnlockedAndTheBackingFileLocked() throws IOException {
        raw("base.raw", (byte) 1);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "base.raw", "raw", (byte) 2);
        Path top = dir.resolve("top.tc");
        opened.clear();
        opener(top).option("file.locking", "off").open().close();
        assertEquals(List.of(false, true), opened.stream().map(StorageOptions::lock).toList());
        assertTrue(top(opener(top).option("file.locking", "on")).lock());
        assertTrue(top(opener(top).option("file.locking", "auto")).lock());
        assertFalse(top(opener(top).lock(false).option("file.locking", "on")).lock());
    }

    /** A second writer is refused while the first holds the image, unless it opens with file.locking=off. */
    @Test
    void lockingOffLetsASecondWriterOpen() throws IOException {
        Path p = raw("w.raw", (byte) 1);
        // a raw open shares writes as qemu-io's does; one that keeps writers out, as a convert source, refuses them
        try (Image first = Imago.opener().path(p).format("raw").writable(true).shareRawWrites(false).open()) {
            assertThrows(ImageLockedException.class, () -> Imago.opener().path(p).format("raw").writable(true).open()
                    .close());
            try (Image second = Imago.opener().path(p).format("raw").writable(true).option("file.locking", "off")
                    .open()) {
                second.write(ByteBuffer.wrap(new byte[] {9}), 0);
            }
            assertFalse(first.readOnly());
        }
        assertEquals(9, Files.readAllBytes(p)[0]);
    }

    @Test
    void detectZeroesUnmapReleasesWhatAZeroWriteCovers() throws IOException {
        Path p = raw("z.raw", (byte) 1);
        int block = 64 << 10;
        try (Image image = Imago.opener().path(p).format("raw").writable(true).open()) {
            image.write(ByteBuffer.allocate(block), 0);
            assertTrue(image.extent(0, block).data(), "written as data without detect-zeroes");
        }
        try (Image image = Imago.opener().path(p).format("raw").writable(true).option("detect-zeroes", "unmap")
                .open()) {
            image.write(ByteBuffer.allocate(block), block);
            assertFalse(image.extent(block, block).data(), "a hole after a detected zero write with unmap");
            assertTrue(image.extent(2 * block, block).data());
        }
    }

    @Test
    void badValuesAreRefusedInQemusWords() {
        Path p = dir.resolve("missing.raw"); // the values are checked before anything opens
        assertEquals("Parameter 'cache.direct' expects 'on' or 'off'", refusal(p, "cache.direct", "x"));
        assertEquals("Parameter 'cache.no-flush' expects 'on' or 'off'", refusal(p, "file.cache.no-flush", "x"));
        assertEquals("invalid parameter value: x", refusal(p, "file.locking", "x"));
        assertEquals("invalid parameter value: x", refusal(p, "detect-zeroes", "x"));
        assertEquals("invalid parameter value: x", refusal(p, "file.aio", "x"));
        assertEquals("aio=native was specified, but it requires cache.direct=on, which was not specified.",
                refusal(p, "file.aio", "native"));
    }

    @Test
    void aioIsTakenAsQemuTakesIt() throws IOException {
        Path p = raw("a.raw", (byte) 1);
        for (String mode : List.of("threads", "io_uring")) {
            assertFalse(top(opener(p).format("raw").option("file.aio", mode)).directIO());
        }
        assertTrue(top(opener(p).format("raw").directIO(true).option("file.aio", "native")).directIO());
        assertTrue(top(opener(p).format("raw").option("cache.direct", "on").option("file.aio", "native")).directIO());
    }

    private String refusal(Path p, String name, String value) {
        return assertThrows(IllegalArgumentException.class, () -> Imago.opener().path(p).format("raw")
                .option(name, value).open()).getMessage();
    }
}
