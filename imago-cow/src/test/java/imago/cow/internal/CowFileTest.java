package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CorruptImageException;
import imago.api.CreateOptions;
import imago.api.Image;
import imago.api.spi.OpenContext;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files on disk through {@link Imago}: create over a raw backing file (size taken from it), write, reopen. */
class CowFileTest {

    @Test
    void overlayOnARawFile(@TempDir Path dir) throws IOException {
        SplittableRandom r = new SplittableRandom(8);
        byte[] backing = CowTestSupport.random(r, 3 * 1024 * 1024 + 512);
        Files.write(dir.resolve("base.raw"), backing);
        for (String variant : List.of("qemu", "uml-v3")) {
            Path cow = dir.resolve("overlay-" + variant + ".cow");
            Imago.create(cow, "cow", CreateOptions.builder().backingFile("base.raw").option("variant", variant)
                    .build());
            byte[] model = backing.clone();
            try (Image image = Imago.opener().path(cow).writable(true).open()) {
                assertEquals(backing.length, image.size());
                assertEquals("raw", image.backing().orElseThrow().format());
                CowWriteTest.randomOps(image, model, r, 200);
            }
            try (Image image = Imago.open(cow)) {
                assertEquals("cow", Imago.probe(cow));
                assertArrayEquals(model, CowTestSupport.readAll(image));
                assertEquals("base.raw", image.info().backingFilename().orElseThrow());
                long mtime = Files.getLastModifiedTime(dir.resolve("base.raw")).to(java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(mtime, ((Number) image.info().formatSpecific().get("backing-mtime")).longValue(),
                        "Imago.create records the backing file's mtime, as QEMU and UML do");
            }
        }
    }

    @Test
    void umlBackingCheckComparesSizeAndMtime() throws IOException {
        CowImages.Spec spec = CowImages.Spec.of(CowVariant.UML_V3, "base", 8192);
        MemoryStorage s = MemoryStorage.of(CowTestSupport.name("check"), CowImages.image(spec, new java.util.BitSet(),
                new byte[0]));
        CowFormatDriver d = new CowFormatDriver();
        List<String> warnings = new ArrayList<>();
        CowInstance byDefault = (CowInstance) d.open(s, OpenContext.of(false));
        assertEquals("warn", byDefault.formatSpecific().get("check-backing"), "UML's check warns by default");
        CowInstance off = (CowInstance) d.open(s, new OpenContext(false, false, Map.of("cow.check-backing", "off")));
        off.checkBacking(1, OptionalLong.of(1), warnings::add);
        assertEquals(List.of(), warnings);
        CowInstance warn = (CowInstance) d.open(s, new OpenContext(false, false, Map.of("cow.check-backing", "warn")));
        warn.checkBacking(8192, OptionalLong.of(spec.mtime()), warnings::add);
        assertEquals(List.of(), warnings);
        warn.checkBacking(8193, OptionalLong.of(spec.mtime()), warnings::add);
        warn.checkBacking(8192, OptionalLong.of(5), warnings::add);
        assertEquals(2, warnings.size(), warnings.toString());
        assertEquals("warn", warn.formatSpecific().get("check-backing"));
        CowInstance refuse = (CowInstance) d.open(s, new OpenContext(false, false,
                Map.of("cow.check-backing", "refuse")));
        assertThrows(CorruptImageException.class, () -> refuse.checkBacking(8192, OptionalLong.of(5), w -> { }));
    }

    @Test
    void theOpenerReportsTheBackingFileSoAChangedBackingFileIsRefusedWhenAsked(@TempDir Path dir)
            throws IOException {
        Files.write(dir.resolve("base.raw"), new byte[8192]);
        Path cow = dir.resolve("top.cow");
        Imago.create(cow, "cow", CreateOptions.builder().backingFile("base.raw").option("variant", "uml-v3").build());
        try (Image ok = Imago.opener().path(cow).option("cow.check-backing", "refuse").open()) {
            assertEquals(8192, ok.size(), "the recorded mtime and size match the untouched backing file");
        }
        Files.setLastModifiedTime(dir.resolve("base.raw"),
                java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 86_400_000L));
        CorruptImageException e = assertThrows(CorruptImageException.class,
                () -> Imago.opener().path(cow).option("cow.check-backing", "refuse").open());
        assertTrue(e.getMessage().contains("mtime mismatch"), e.getMessage());
        try (Image warned = Imago.opener().path(cow).open()) {
            assertEquals(8192, warned.size(), "by default a mismatch only warns");
        }
    }

    /**
     * UML records a backing file's exact length; imago sees a raw file whose length is not a multiple of 512 as
     * a disk of whole sectors (as QEMU does), so the check compares whole sectors.
     */
    @Test
    void theBackingCheckComparesWholeSectors(@TempDir Path dir) throws IOException {
        byte[] base = new byte[8000];
        java.util.Arrays.fill(base, (byte) 3);
        Files.write(dir.resolve("base.raw"), base);
        Path cow = dir.resolve("top.cow");
        Imago.create(cow, "cow", CreateOptions.builder().size(8000).backingFile("base.raw").backingFormat("raw")
                .option("variant", "uml-v3").build());
        try (Image image = Imago.opener().path(cow).option("cow.check-backing", "refuse").open()) {
            assertEquals(8000, image.size(), "the header's size, as UML wrote it");
            assertEquals(8192, image.backing().orElseThrow().size(), "the raw backing file in whole sectors");
            assertArrayEquals(base, CowTestSupport.readAll(image));
        }
        Files.write(dir.resolve("base.raw"), new byte[8193]);
        Path recorded = dir.resolve("recorded.cow");
        Imago.create(recorded, "cow", CreateOptions.builder().size(8000).backingFile("base.raw").backingFormat("raw")
                .option("variant", "uml-v3").build());
        CorruptImageException e = assertThrows(CorruptImageException.class,
                () -> Imago.opener().path(recorded).option("cow.check-backing", "refuse").open());
        assertTrue(e.getMessage().contains("Size mismatch (8000 vs 8704)"), e.getMessage());
    }

    @Test
    void syncDataOptionIsHonouredAndValidated() throws IOException {
        String name = CowTestSupport.name("sync");
        MemoryStorage s = MemoryStorage.create(name);
        CowFormatDriver d = new CowFormatDriver();
        d.create(s, CreateOptions.ofSize(1 << 16));
        assertThrows(IllegalArgumentException.class, () -> d.open(s, new OpenContext(true, false,
                Map.of("cow.sync-data", "yes"))));
        try (Image image = Imago.opener().location(s.location()).writable(true).option("cow.sync-data", "on").open()) {
            image.write(ByteBuffer.wrap(new byte[] {9}), 1000);
        }
        try (Image image = CowTestSupport.open(name, false)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            image.read(b, 1000);
            assertEquals(9, b.get(0));
        }
    }
}
