package imago.probe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.Extent;
import imago.api.Image;
import imago.api.ImageException;
import imago.api.ImageLimitException;
import imago.api.OpenDeniedException;
import imago.api.OpenGate;
import imago.api.OpenRequest;
import imago.api.ReadOnlyImageException;
import imago.api.UnknownFormatException;
import imago.api.spi.FormatDriver;
import imago.api.spi.StorageProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OpenerTest {
    @TempDir
    Path dir;

    /** The installed drivers and storages plus the test chain format. */
    private static Plugins plugins(FormatDriver... extra) {
        List<FormatDriver> drivers = new ArrayList<>();
        ServiceLoader.load(FormatDriver.class).forEach(drivers::add);
        drivers.addAll(Arrays.asList(extra));
        List<StorageProvider> storages = new ArrayList<>();
        ServiceLoader.load(StorageProvider.class).forEach(storages::add);
        return new Plugins(drivers, storages);
    }

    private static Opener opener(Path path) {
        return new Opener(plugins(new ChainFormat(), new SplitFormat())).path(path);
    }

    private Path raw(String name, int size, byte fill) throws IOException {
        byte[] b = new byte[size];
        Arrays.fill(b, fill);
        return Files.write(dir.resolve(name), b);
    }

    private static byte[] readAll(Image image) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) image.size());
        image.read(b, 0);
        return b.array();
    }

    @Test
    void readsThroughABackingChainWithRecordedAndProbedFormats() throws IOException {
        raw("base.raw", 4096, (byte) 1);
        ChainFormat.write(dir.resolve("mid.tc"), 2048, "base.raw", "raw", (byte) 2);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "mid.tc", null, (byte) 3);
        try (Image top = opener(dir.resolve("top.tc")).open()) {
            assertEquals("tchain", top.format());
            byte[] all = readAll(top);
            // top: second half is its own; first half falls to mid, whose first half falls to base
            assertEquals(1, all[0]);
            assertEquals(2, all[1024]);
            assertEquals(3, all[2048]);
            assertEquals("raw", top.backing().orElseThrow().backing().orElseThrow().format());
            Extent e = top.extent(0, 4096);
            assertEquals(2, e.depth());
            assertEquals(1024, e.length());
            assertTrue(e.present() && e.data());
        }
    }

    @Test
    void backingPastItsEndReadsAsZero() throws IOException {
        raw("small.raw", 512, (byte) 7);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "small.raw", "raw", (byte) 3);
        try (Image top = opener(dir.resolve("top.tc")).open()) {
            byte[] all = readAll(top);
            assertEquals(7, all[511]);
            assertEquals(0, all[512]);
            assertEquals(0, all[2047]);
            Extent e = top.extent(512, 4096);
            assertEquals(0, e.depth());
            assertFalse(e.present());
            assertTrue(e.zero());
        }
    }

    @Test
    void backingLoopsAreCorruptImages() throws IOException {
        ChainFormat.write(dir.resolve("a.tc"), 4096, "b.tc", "tchain", (byte) 1);
        ChainFormat.write(dir.resolve("b.tc"), 4096, "a.tc", "tchain", (byte) 2);
        ChainFormat.write(dir.resolve("self.tc"), 4096, "./self.tc", "tchain", (byte) 2);
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> opener(dir.resolve("a.tc")).open());
        assertTrue(e.getMessage().contains("loops"), e.getMessage());
        assertThrows(CorruptImageException.class, () -> opener(dir.resolve("self.tc")).open());
    }

    @Test
    void chainsDeeperThanTheLimitAreRefused() throws IOException {
        raw("l0", 4096, (byte) 1);
        for (int i = 1; i <= 5; i++) {
            ChainFormat.write(dir.resolve("l" + i), 4096, "l" + (i - 1), i == 1 ? "raw" : "tchain", (byte) i);
        }
        try (Image ok = opener(dir.resolve("l5")).maxChainDepth(5).open()) {
            assertEquals(1, readAll(ok)[0]);
        }
        assertThrows(ImageLimitException.class, () -> opener(dir.resolve("l5")).maxChainDepth(4).open());
    }

    @Test
    void missingBackingFileNamesTheFile() throws IOException {
        ChainFormat.write(dir.resolve("top.tc"), 4096, "gone.raw", "raw", (byte) 3);
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> opener(dir.resolve("top.tc")).open());
        assertTrue(e.getMessage().contains("gone.raw"), e.getMessage());
    }

    @Test
    void denyAllRefusesEveryNamedFile() throws IOException {
        raw("base.raw", 4096, (byte) 1);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "base.raw", "raw", (byte) 3);
        OpenDeniedException e = assertThrows(OpenDeniedException.class,
                () -> opener(dir.resolve("top.tc")).gate(OpenGate.denyAll()).open());
        assertTrue(e.getMessage().contains("base.raw"), e.getMessage());
    }

    @Test
    void confinedGateAllowsInsideAndRefusesDotDotAndSymlinkEscapes() throws IOException {
        Path inner = Files.createDirectory(dir.resolve("inner"));
        raw("outside.raw", 4096, (byte) 9);
        Files.write(inner.resolve("inside.raw"), new byte[4096]);
        ChainFormat.write(inner.resolve("ok.tc"), 4096, "inside.raw", "raw", (byte) 3);
        ChainFormat.write(inner.resolve("dotdot.tc"), 4096, "../outside.raw", "raw", (byte) 3);
        ChainFormat.write(inner.resolve("abs.tc"), 4096, dir.resolve("outside.raw").toString(), "raw", (byte) 3);
        Files.createSymbolicLink(inner.resolve("link.raw"), dir.resolve("outside.raw"));
        ChainFormat.write(inner.resolve("link.tc"), 4096, "link.raw", "raw", (byte) 3);
        OpenGate gate = OpenGate.confinedTo(inner);
        try (Image ok = opener(inner.resolve("ok.tc")).gate(gate).open()) {
            assertEquals(0, readAll(ok)[0]);
        }
        for (String name : List.of("dotdot.tc", "abs.tc", "link.tc")) {
            OpenDeniedException e = assertThrows(OpenDeniedException.class,
                    () -> opener(inner.resolve(name)).gate(gate).open(), name);
            assertTrue(e.getMessage().contains("outside"), e.getMessage());
        }
    }

    @Test
    void confinedGateRefusesToProbeAnUnrecordedBackingFormat() throws IOException {
        raw("base.raw", 4096, (byte) 1);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "base.raw", null, (byte) 3);
        OpenDeniedException e = assertThrows(OpenDeniedException.class,
                () -> opener(dir.resolve("top.tc")).gate(OpenGate.confinedTo(dir)).open());
        assertTrue(e.getMessage().contains("no recorded format"), e.getMessage());
    }

    @Test
    void userGateSeesWhatIsOpenedAndWhy() throws IOException {
        raw("base.raw", 4096, (byte) 1);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "base.raw", "raw", (byte) 3);
        List<OpenRequest> seen = new ArrayList<>();
        try (Image img = opener(dir.resolve("top.tc")).gate(seen::add).open()) {
            assertTrue(img.backing().isPresent());
            assertEquals(1, seen.size());
            OpenRequest r = seen.get(0);
            assertEquals("base.raw", r.storedName());
            assertEquals(dir.resolve("base.raw").toAbsolutePath().normalize(), r.target().path());
            assertEquals(OpenRequest.Purpose.BACKING_FILE, r.purpose());
            assertEquals(0, r.depth());
        }
    }

    @Test
    void overridesReplaceOrDropTheBackingFile() throws IOException {
        raw("base.raw", 4096, (byte) 1);
        raw("other.raw", 4096, (byte) 5);
        ChainFormat.write(dir.resolve("top.tc"), 4096, "base.raw", "raw", (byte) 3);
        try (Image img = opener(dir.resolve("top.tc")).backingFile(dir.resolve("other.raw"), "raw").open()) {
            assertEquals(5, readAll(img)[0]);
        }
        try (Image img = opener(dir.resolve("top.tc")).noBacking().gate(OpenGate.denyAll()).open()) {
            assertEquals(0, readAll(img)[0]);
            assertTrue(img.backing().isEmpty());
        }
    }

    @Test
    void probingPicksTheStrongFormatOverRawAndExplicitFormatsWin() throws IOException {
        ChainFormat.write(dir.resolve("x.tc"), 4096, null, null, (byte) 3);
        try (Image img = opener(dir.resolve("x.tc")).open()) {
            assertEquals("tchain", img.format());
        }
        try (Image img = opener(dir.resolve("x.tc")).format("raw").open()) {
            assertEquals("raw", img.format());
            assertEquals(Files.size(dir.resolve("x.tc")), img.size());
        }
    }

    @Test
    void aTieIsAnErrorNamingBothDrivers() throws IOException {
        ChainFormat.write(dir.resolve("x.tc"), 4096, null, null, (byte) 3);
        FormatDriver twin = new ChainFormat() {
            @Override
            public String name() {
                return "twin";
            }
        };
        Opener o = new Opener(plugins(new ChainFormat(), twin)).path(dir.resolve("x.tc"));
        ImageException e = assertThrows(ImageException.class, o::open);
        assertTrue(e.getMessage().contains("tchain") && e.getMessage().contains("twin"), e.getMessage());
    }

    @Test
    void duplicateDriverNamesFailLoudly() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> plugins(new ChainFormat(), new ChainFormat()));
        assertTrue(e.getMessage().contains("tchain"), e.getMessage());
    }

    @Test
    void unknownFormatNameListsInstalledFormats() throws IOException {
        raw("x.raw", 512, (byte) 0);
        UnknownFormatException e = assertThrows(UnknownFormatException.class,
                () -> opener(dir.resolve("x.raw")).format("vhdx").open());
        assertTrue(e.installed().contains("raw"), e.getMessage());
        assertTrue(e.getMessage().contains("vhdx"), e.getMessage());
    }

    @Test
    void probedRawRefusesWritesThatWouldMakeItProbeAsAnotherFormat() throws IOException {
        Path p = raw("guest.raw", 4096, (byte) 0);
        try (Image img = opener(p).writable(true).open()) {
            assertEquals("raw", img.format());
            ByteBuffer magic = ByteBuffer.wrap("TCHN".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            ImageException e = assertThrows(ImageException.class, () -> img.write(magic, 0));
            assertTrue(e.getMessage().contains("tchain"), e.getMessage());
            // partial writes that complete the magic are caught too
            img.write(ByteBuffer.wrap(new byte[] {'T', 'C'}), 0);
            assertThrows(ImageException.class, () -> img.write(ByteBuffer.wrap(new byte[] {'H', 'N'}), 2));
            img.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 100);
            img.write(ByteBuffer.wrap(new byte[] {'T', 'C', 'H', 'N'}), 512);
        }
        byte[] content = Files.readAllBytes(p);
        assertArrayEquals(new byte[] {'T', 'C', 0, 0}, Arrays.copyOf(content, 4));
        // with an explicit format the user takes responsibility
        try (Image img = opener(p).format("raw").writable(true).open()) {
            img.write(ByteBuffer.wrap(new byte[] {'H', 'N'}), 2);
        }
        assertEquals('N', Files.readAllBytes(p)[3]);
    }

    /** The installed storages, each storage counting its syncs in {@code syncs}. */
    private static Opener countingSyncs(Path path, java.util.concurrent.atomic.AtomicInteger syncs) {
        return recording(path, syncs, new ArrayList<>());
    }

    /**
     * The installed storages, each storage counting its syncs in {@code syncs}, and the options of each storage
     * opened added to {@code opened}.
     */
    static Opener recording(Path path, java.util.concurrent.atomic.AtomicInteger syncs,
            List<imago.api.spi.StorageOptions> opened) {
        List<StorageProvider> storages = new ArrayList<>();
        for (StorageProvider p : ServiceLoader.load(StorageProvider.class)) {
            storages.add(new StorageProvider() {
                @Override
                public String scheme() {
                    return p.scheme();
                }

                @Override
                public imago.api.spi.Storage open(imago.api.StorageLocation location,
                        imago.api.spi.StorageOptions options) throws IOException {
                    imago.api.spi.Storage s = p.open(location, options);
                    opened.add(options);
                    return (imago.api.spi.Storage) java.lang.reflect.Proxy.newProxyInstance(
                            OpenerTest.class.getClassLoader(), new Class<?>[] {imago.api.spi.Storage.class},
                            (proxy, method, args) -> {
                                if (method.getName().equals("sync")) {
                                    syncs.incrementAndGet();
                                }
                                try {
                                    return method.invoke(s, args);
                                } catch (java.lang.reflect.InvocationTargetException e) {
                                    throw e.getCause();
                                }
                            });
                }
            });
        }
        List<FormatDriver> drivers = new ArrayList<>();
        ServiceLoader.load(FormatDriver.class).forEach(drivers::add);
        drivers.add(new ChainFormat());
        return new Opener(new Plugins(drivers, storages)).path(path);
    }

    @Test
    void noSyncWritesEverythingButNeverSyncs() throws IOException {
        Path p = raw("unsafe.raw", 8192, (byte) 0);
        var syncs = new java.util.concurrent.atomic.AtomicInteger();
        try (Image img = countingSyncs(p, syncs).format("raw").writable(true).noSync(true).open()) {
            img.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 4096);
            img.flush();
        }
        assertEquals(0, syncs.get());
        assertArrayEquals(new byte[] {1, 2, 3}, Arrays.copyOfRange(Files.readAllBytes(p), 4096, 4099));
        // the default syncs on flush and on close; a read-only open never does
        try (Image img = countingSyncs(p, syncs).format("raw").writable(true).open()) {
            img.write(ByteBuffer.wrap(new byte[] {4}), 0);
            img.flush();
            assertTrue(syncs.get() >= 1, "synced on flush: " + syncs);
        }
        int afterClose = syncs.get();
        assertTrue(afterClose >= 2, "synced on close: " + afterClose);
        try (Image img = countingSyncs(p, syncs).format("raw").noSync(true).open()) {
            assertEquals(4, readAll(img)[0]);
        }
        assertEquals(afterClose, syncs.get());
    }

    /** An image made of several files: each extent file goes through the gate and is handed to the layer. */
    @Test
    void extentFilesAreGatedOpenedAndAttached() throws IOException {
        Path inner = Files.createDirectory(dir.resolve("split"));
        Files.write(inner.resolve("a.bin"), new byte[] {1, 1, 1, 1});
        Files.write(inner.resolve("b.bin"), new byte[] {2, 2});
        raw("outside.raw", 4, (byte) 9);
        SplitFormat.write(inner.resolve("ok.ts"), List.of(new SplitFormat.Line(true, 4, "a.bin"),
                new SplitFormat.Line(false, 2, "b.bin")));
        List<OpenRequest> seen = new ArrayList<>();
        OpenGate confined = OpenGate.confinedTo(inner);
        OpenGate recording = request -> {
            seen.add(request);
            confined.check(request);
        };
        try (Image image = opener(inner.resolve("ok.ts")).gate(recording).writable(true).open()) {
            assertArrayEquals(new byte[] {1, 1, 1, 1, 2, 2}, readAll(image));
            image.write(ByteBuffer.wrap(new byte[] {7}), 1);
            // the RDONLY extent is opened read-only even though the image is writable
            assertThrows(ReadOnlyImageException.class, () -> image.write(ByteBuffer.wrap(new byte[] {7}), 5));
        }
        assertEquals(List.of("a.bin", "b.bin"), seen.stream().map(OpenRequest::storedName).toList());
        assertTrue(seen.stream().allMatch(r -> r.purpose() == OpenRequest.Purpose.EXTENT_FILE), seen::toString);
        assertArrayEquals(new byte[] {1, 7, 1, 1}, Files.readAllBytes(inner.resolve("a.bin")));

        // CVE-2022-47951's class: a descriptor naming a file outside, or itself, or the same extent twice
        SplitFormat.write(inner.resolve("escape.ts"), List.of(new SplitFormat.Line(true, 4, "../outside.raw")));
        SplitFormat.write(inner.resolve("self.ts"), List.of(new SplitFormat.Line(true, 4, "self.ts")));
        SplitFormat.write(inner.resolve("twice.ts"), List.of(new SplitFormat.Line(true, 4, "a.bin"),
                new SplitFormat.Line(true, 4, "./a.bin")));
        assertThrows(OpenDeniedException.class, () -> opener(inner.resolve("escape.ts")).gate(confined).open());
        try (Image permissive = opener(inner.resolve("escape.ts")).open()) {
            assertArrayEquals(new byte[] {9, 9, 9, 9}, readAll(permissive));
        }
        CorruptImageException self = assertThrows(CorruptImageException.class,
                () -> opener(inner.resolve("self.ts")).open());
        assertTrue(self.getMessage().contains("the image itself"), self.getMessage());
        assertThrows(CorruptImageException.class, () -> opener(inner.resolve("twice.ts")).open());
    }

    @Test
    void tooManyExtentFilesAreRefused() throws IOException {
        List<SplitFormat.Line> lines = new ArrayList<>();
        for (int i = 0; i <= Opener.MAX_EXTENT_FILES; i++) {
            lines.add(new SplitFormat.Line(false, 1, "x" + i + ".bin")); // refused before any is opened
        }
        SplitFormat.write(dir.resolve("many.ts"), lines);
        ImageLimitException e = assertThrows(ImageLimitException.class, () -> opener(dir.resolve("many.ts")).open());
        assertTrue(e.getMessage().contains("more than " + Opener.MAX_EXTENT_FILES), e.getMessage());
    }

    @Test
    void readOnlyFormatsRefuseAWritableOpenBeforeTheDriverRuns() throws IOException {
        ChainFormat.write(dir.resolve("ro.tc"), 4096, null, null, (byte) 3);
        ChainFormat readOnly = new ChainFormat() {
            @Override
            public boolean readOnly() {
                return true;
            }

            @Override
            public imago.api.spi.FormatInstance open(imago.api.spi.Storage storage, imago.api.spi.OpenContext context)
                    throws IOException {
                if (context.writable()) {
                    throw new AssertionError("the driver was asked to open writable");
                }
                return super.open(storage, context);
            }
        };
        Opener o = new Opener(plugins(readOnly)).path(dir.resolve("ro.tc"));
        assertThrows(ReadOnlyImageException.class, () -> o.writable(true).open());
        try (Image image = new Opener(plugins(readOnly)).path(dir.resolve("ro.tc")).open()) {
            assertEquals(4096, image.size());
        }
    }

    /** An option the format does not take is refused, never ignored; raw's window options are taken. */
    @Test
    void optionsTheFormatDoesNotTakeAreRefused() throws IOException {
        Path p = raw("opts.raw", 4096, (byte) 1);
        Files.write(p, new byte[] {2}, java.nio.file.StandardOpenOption.WRITE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> opener(p).format("raw").option("foo", "bar").open());
        assertEquals("Block format 'raw' does not support the option 'foo'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> opener(p).option("l2-cache-size", "1").open());
        assertEquals("Block format 'raw' does not support the option 'l2-cache-size'", e.getMessage(), "probed too");
        try (Image image = opener(p).format("raw").option("offset", "512").option("size", "1024").open()) {
            assertEquals(1024, image.size());
            assertArrayEquals(filled(1024, (byte) 1), readAll(image));
        }
        e = assertThrows(IllegalArgumentException.class,
                () -> opener(p).format("raw").writable(true).refuseWrites("Block node is read-only").open());
        assertEquals("Block node is read-only", e.getMessage());
        opener(p).format("raw").refuseWrites("Block node is read-only").open().close();
    }

    private static byte[] filled(int length, byte value) {
        byte[] b = new byte[length];
        Arrays.fill(b, value);
        return b;
    }
}
