package imago.raw.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.spi.Confidence;
import imago.api.spi.FormatDriver;
import imago.api.spi.FormatInstance;
import imago.api.spi.OpenContext;
import imago.api.spi.StorageExtent;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Random;
import java.util.ServiceLoader;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RawFormatDriverTest {
    private static final int CHUNK = MemoryStorage.DEFAULT_CHUNK_SIZE;

    private final RawFormatDriver driver = new RawFormatDriver();
    private final List<String> names = new ArrayList<>();

    private MemoryStorage storage(String name) {
        names.add(name);
        return MemoryStorage.create(name);
    }

    @AfterEach
    void cleanUp() {
        names.forEach(MemoryStorage::delete);
    }

    @Test
    void nameAndProbeLength() {
        assertEquals("raw", driver.name());
        assertTrue(driver.name().matches("[a-z0-9]+"));
        assertEquals(0, driver.probeLength());
        assertEquals(Set.of(), driver.createOptionNames());
        assertFalse(driver.supportsBacking());
    }

    @Test
    void probeIsAlwaysWeak() {
        assertEquals(Confidence.WEAK, driver.probe(ByteBuffer.allocate(0), 0));
        assertEquals(Confidence.WEAK, driver.probe(ByteBuffer.allocate(0).asReadOnlyBuffer(), 1L << 40));
        assertEquals(Confidence.WEAK, driver.probe(ByteBuffer.allocate(512), 512));
        byte[] qcow2 = {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3};
        assertEquals(Confidence.WEAK, driver.probe(ByteBuffer.wrap(qcow2).asReadOnlyBuffer(), 8));
        Random random = new Random(99);
        for (int i = 0; i < 200; i++) {
            byte[] head = new byte[random.nextInt(1025)];
            random.nextBytes(head);
            assertEquals(Confidence.WEAK, driver.probe(ByteBuffer.wrap(head).asReadOnlyBuffer(), random.nextLong(1L << 50)));
        }
        ByteBuffer text = ByteBuffer.wrap("not a disk image".getBytes(StandardCharsets.US_ASCII));
        assertEquals(Confidence.WEAK, driver.probe(text, text.remaining()));
        assertEquals(0, text.position(), "probing does not move the buffer");
    }

    @Test
    void createSizesTheStorage() throws IOException {
        MemoryStorage s = storage("raw-create-1");
        driver.create(s, CreateOptions.ofSize(3 * CHUNK + 5));
        assertEquals(3L * CHUNK + 512, s.size(), "rounded up to whole sectors, as qemu-img create does");
        assertEquals(CHUNK, s.allocatedSize().getAsLong(), "preallocation off leaves the image sparse after "
                + "the first block, which create writes as QEMU's file driver does");
        try (FormatInstance raw = driver.open(s, OpenContext.of(false))) {
            assertEquals(3L * CHUNK + 512, raw.size());
            assertEquals(OptionalInt.empty(), raw.clusterSize());
            assertEquals(Map.of(), raw.formatSpecific());
            assertEquals(List.of(), raw.dependencies());
            assertFalse(raw.dirty());
        }
    }

    @Test
    void createHonoursEveryPreallocationModeRawSupports() throws IOException {
        for (Preallocation p : List.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)) {
            MemoryStorage s = storage("raw-create-" + p);
            driver.create(s, CreateOptions.builder().size(2L * CHUNK).preallocation(p).build());
            assertEquals(2L * CHUNK, s.size(), p.toString());
            if (p == Preallocation.OFF) {
                // sparse after the first block, which create writes as QEMU's file driver does
                assertEquals(new StorageExtent(0, CHUNK, true), s.dataExtent(0, Long.MAX_VALUE), p.toString());
                assertEquals(new StorageExtent(CHUNK, CHUNK, false), s.dataExtent(CHUNK, Long.MAX_VALUE));
            } else {
                assertEquals(new StorageExtent(0, 2L * CHUNK, true), s.dataExtent(0, Long.MAX_VALUE), p.toString());
            }
        }
        MemoryStorage m = storage("raw-create-metadata");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> driver.create(m,
                CreateOptions.builder().size(CHUNK).preallocation(Preallocation.METADATA).build()));
        assertTrue(e.getMessage().contains("Unsupported preallocation mode: metadata"), e.getMessage());
    }


    @Test
    void createNeedsASize() {
        MemoryStorage s = storage("raw-create-nosize");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> driver.create(s, CreateOptions.builder().build()));
        assertEquals("Image creation needs a size parameter", e.getMessage());
    }

    @Test
    void createRefusesBackingFilesAndFormats() {
        MemoryStorage s = storage("raw-create-backing");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> driver.create(s, CreateOptions.builder().size(512).backingFile("base.img").build()));
        assertEquals("Backing file not supported for file format 'raw'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> driver.create(s, CreateOptions.builder().size(512).backingFormat("raw").build()));
        assertTrue(e.getMessage().contains("not supported for file format 'raw'"), e.getMessage());
    }

    @Test
    void createRefusesEveryFormatOption() throws IOException {
        MemoryStorage s = storage("raw-create-options");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> driver.create(s, CreateOptions.builder().size(512).option("cluster_size", "65536").build()));
        assertTrue(e.getMessage().contains("'cluster_size'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> driver.create(s, CreateOptions.builder().size(512).option("preallocation", "full").build()));
        assertTrue(e.getMessage().contains("CreateOptions.preallocation"), e.getMessage());
        assertEquals(0, s.size(), "nothing is written when the options are refused");
    }

    @Test
    void openingAReadOnlyStorageForWritingIsRefused() throws IOException {
        MemoryStorage s = storage("raw-open-ro");
        driver.create(s, CreateOptions.ofSize(1024));
        MemoryStorage ro = s.readOnlyView();
        assertThrows(ReadOnlyImageException.class, () -> driver.open(ro, OpenContext.of(true)));
        try (FormatInstance raw = driver.open(ro, OpenContext.of(false))) {
            assertEquals(1024, raw.size());
        }
    }

    @Test
    void driverIsFoundThroughServiceLoader() {
        // ServiceLoader.load needs a 'uses' clause in the caller's module; tests add it at run time
        RawFormatDriverTest.class.getModule().addUses(FormatDriver.class);
        FormatDriver found = ServiceLoader.load(FormatDriver.class, RawFormatDriverTest.class.getClassLoader())
                .stream().map(ServiceLoader.Provider::get).filter(d -> d.name().equals("raw")).findFirst()
                .orElseThrow();
        assertInstanceOf(RawFormatDriver.class, found);
    }
}
