package imago.storage.file;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.api.spi.StorageProvider;
import java.io.IOException;
import java.io.InputStream;
import java.lang.module.ModuleDescriptor;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileStorageProviderTest {
    @TempDir
    Path dir;

    @Test
    void servesTheFileScheme() throws IOException {
        StorageProvider provider = new FileStorageProvider();
        assertEquals("file", provider.scheme());
        Path file = dir.resolve("p.img");
        try (Storage s = provider.open(StorageLocation.file(file), StorageOptions.createNew())) {
            s.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
            assertEquals(3, s.size());
            assertEquals(file.toString(), s.name());
        }
        assertThrows(IllegalArgumentException.class,
                () -> provider.open(StorageLocation.memory("x"), StorageOptions.readOnly()));
        assertThrows(NullPointerException.class, () -> provider.open(null, StorageOptions.readOnly()));
    }

    @Test
    void isFoundByServiceLoaderOnTheModulePathAndTheClassPath() throws IOException {
        Module module = FileStorageProvider.class.getModule();
        if (module.isNamed()) {
            ModuleDescriptor.Provides provides = module.getDescriptor().provides().stream()
                    .filter(p -> p.service().equals(StorageProvider.class.getName()))
                    .findFirst().orElseThrow();
            assertEquals(List.of(FileStorageProvider.class.getName()), provides.providers());
            assertTrue(module.getDescriptor().exports().isEmpty(), "exports nothing");
            module.addUses(StorageProvider.class); // the test runs inside the module, which does not use it
        }
        List<String> schemes = ServiceLoader.load(StorageProvider.class).stream()
                .map(ServiceLoader.Provider::get).map(StorageProvider::scheme).toList();
        assertTrue(schemes.contains("file"), schemes.toString());
        try (InputStream in = FileStorageProvider.class.getClassLoader()
                .getResourceAsStream("META-INF/services/" + StorageProvider.class.getName())) {
            assertEquals(FileStorageProvider.class.getName(), new String(in.readAllBytes(), StandardCharsets.UTF_8).strip());
        }
    }
}
