package imago.storage.memory;

import imago.api.Preallocation;
import imago.api.spi.Storage;
import imago.testkit.StorageContractTest;
import java.io.IOException;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;

/** The storage contract on memory storages. */
class MemoryStorageContractTest extends StorageContractTest {
    private final String name = "contract-" + UUID.randomUUID();

    @Override
    protected Storage openNew(long size) throws IOException {
        MemoryStorage s = MemoryStorage.create(name);
        s.resize(size, Preallocation.OFF);
        return s;
    }

    @Override
    protected Storage openReadOnly(Storage written) throws IOException {
        return MemoryStorage.open(name, false);
    }

    @AfterEach
    void forget() {
        MemoryStorage.delete(name);
    }
}
