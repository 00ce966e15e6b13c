package imago.storage.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Preallocation;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.NoSuchFileException;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class MemoryRegistryTest {
    private final MemoryStorageProvider provider = new MemoryStorageProvider();

    @AfterEach
    void cleanUp() {
        List.of("reg-a", "reg-b", "reg-c", "reg-d", "reg-e", "reg-f", "reg-g").forEach(MemoryStorage::delete);
    }

    private static byte[] read(Storage s, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        s.read(b, offset);
        return b.array();
    }

    @Test
    void createdStoreCanBeOpenedByLocationAndSharesContent() throws IOException {
        MemoryStorage a = MemoryStorage.create("reg-a");
        assertEquals("memory:reg-a", a.name());
        assertEquals(StorageLocation.memory("reg-a"), a.location());
        a.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
        try (Storage b = provider.open(StorageLocation.memory("reg-a"), StorageOptions.readWrite())) {
            assertArrayEquals(new byte[] {1, 2, 3}, read(b, 0, 3));
            b.write(ByteBuffer.wrap(new byte[] {9}), 3);
        }
        assertEquals(4, a.size(), "handles share one store");
        assertTrue(MemoryStorage.exists("reg-a"));
        assertTrue(MemoryStorage.names().contains("reg-a"));
    }

    @Test
    void openingAMissingNameThrowsNoSuchFile() {
        NoSuchFileException e = assertThrows(NoSuchFileException.class,
                () -> provider.open(StorageLocation.memory("reg-missing"), StorageOptions.readOnly()));
        assertEquals("memory:reg-missing", e.getMessage());
        assertThrows(NoSuchFileException.class, () -> MemoryStorage.open("reg-missing", true));
        assertFalse(MemoryStorage.exists("reg-missing"));
    }

    @Test
    void createOptionCreatesOrTruncates() throws IOException {
        try (Storage s = provider.open(StorageLocation.memory("reg-b"), StorageOptions.createNew())) {
            s.write(ByteBuffer.wrap(new byte[100]), 0);
            assertFalse(s.readOnly());
        }
        MemoryStorage before = MemoryStorage.open("reg-b", true);
        assertEquals(100, before.size());
        try (Storage s = provider.open(StorageLocation.memory("reg-b"), StorageOptions.createNew().withDirectIO(true))) {
            assertEquals(0, s.size());
        }
        assertEquals(0, before.size(), "create truncates the existing store, as O_TRUNC does");
    }

    @Test
    void readOnlyOpenRefusesEveryChange() throws IOException {
        MemoryStorage.of("reg-c", new byte[] {5, 6, 7});
        try (Storage ro = provider.open(StorageLocation.memory("reg-c"), StorageOptions.readOnly())) {
            assertTrue(ro.readOnly());
            assertArrayEquals(new byte[] {5, 6, 7}, read(ro, 0, 3));
            ReadOnlyImageException e = assertThrows(ReadOnlyImageException.class,
                    () -> ro.write(ByteBuffer.wrap(new byte[1]), 0));
            assertEquals("memory:reg-c", e.resource());
            assertThrows(ReadOnlyImageException.class, () -> ro.writeZeroes(0, 1, true));
            assertThrows(ReadOnlyImageException.class, () -> ro.discard(0, 1));
            assertThrows(ReadOnlyImageException.class, () -> ro.resize(0, Preallocation.OFF));
            ro.flush();
            ro.sync();
        }
        assertArrayEquals(new byte[] {5, 6, 7}, read(MemoryStorage.open("reg-c", false), 0, 3));
    }

    @Test
    void readOnlyViewSeesWritesAndOutlivesItsOrigin() throws IOException {
        MemoryStorage rw = MemoryStorage.create("reg-d");
        MemoryStorage view = rw.readOnlyView();
        assertNotSame(rw, view);
        assertTrue(view.readOnly());
        rw.write(ByteBuffer.wrap(new byte[] {42}), 10);
        rw.close();
        assertEquals(42, read(view, 10, 1)[0]);
        assertThrows(ReadOnlyImageException.class, () -> view.write(ByteBuffer.wrap(new byte[1]), 0));
    }

    @Test
    void deleteRemovesTheNameButOpenHandlesKeepWorking() throws IOException {
        MemoryStorage s = MemoryStorage.create("reg-e");
        assertTrue(MemoryStorage.delete("reg-e"));
        assertFalse(MemoryStorage.delete("reg-e"));
        assertThrows(NoSuchFileException.class, () -> MemoryStorage.open("reg-e", false));
        s.write(ByteBuffer.wrap(new byte[] {1}), 0);
        assertEquals(1, s.size());
        assertFalse(MemoryStorage.names().contains("reg-e"));
    }

    @Test
    void ofCopiesTheContentWithoutMovingTheBuffer() throws IOException {
        ByteBuffer content = ByteBuffer.wrap(new byte[] {0, 1, 2, 3, 4}).position(1);
        MemoryStorage s = MemoryStorage.of("reg-f", content);
        assertEquals(1, content.position());
        assertEquals(4, s.size());
        assertArrayEquals(new byte[] {1, 2, 3, 4}, read(s, 0, 4));
        content.put(1, (byte) 77);
        assertEquals(1, read(s, 0, 1)[0], "the store holds a copy");
        MemoryStorage again = MemoryStorage.of("reg-f", new byte[] {8});
        assertEquals(1, s.size(), "of replaces the content of an existing store");
        assertEquals(8, read(again, 0, 1)[0]);
    }

    @Test
    void resolveTakesStoredNamesLiterally() {
        MemoryStorage s = MemoryStorage.create("reg-g");
        assertEquals(Optional.of(StorageLocation.memory("base")), s.resolve("base"));
        assertEquals(Optional.of(StorageLocation.memory("file:/etc/passwd")), s.resolve("file:/etc/passwd"),
                "a stored name never selects a protocol");
        assertEquals(Optional.of(StorageLocation.memory("../x")), s.resolve("../x"));
        assertEquals(Optional.empty(), s.resolve(""));
    }

    @Test
    void badNamesAndLocationsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> MemoryStorage.create(""));
        assertThrows(NullPointerException.class, () -> MemoryStorage.create(null));
        assertThrows(IllegalArgumentException.class,
                () -> provider.open(StorageLocation.file(java.nio.file.Path.of("/tmp/x")), StorageOptions.readOnly()));
    }

    @Test
    void providerIsFoundThroughServiceLoader() {
        // ServiceLoader.load needs a 'uses' clause in the caller's module; tests add it at run time
        MemoryRegistryTest.class.getModule().addUses(StorageProvider.class);
        StorageProvider found = ServiceLoader.load(StorageProvider.class, MemoryRegistryTest.class.getClassLoader())
                .stream().map(ServiceLoader.Provider::get).filter(p -> p.scheme().equals("memory")).findFirst()
                .orElseThrow();
        assertInstanceOf(MemoryStorageProvider.class, found);
    }
}
