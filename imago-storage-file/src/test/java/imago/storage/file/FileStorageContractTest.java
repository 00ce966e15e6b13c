package imago.storage.file;

import imago.api.Preallocation;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import imago.api.spi.StorageOptions;
import imago.testkit.StorageContractTest;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** The storage contract on files (sparse: holes come from SEEK_DATA/SEEK_HOLE where the file system has them). */
class FileStorageContractTest extends StorageContractTest {
    @TempDir
    Path dir;

    @Override
    protected Storage openNew(long size) throws IOException {
        Storage s = new FileStorageProvider().open(StorageLocation.file(dir.resolve("contract.img")),
                StorageOptions.createNew());
        s.resize(size, Preallocation.OFF);
        return s;
    }

    @Override
    protected Storage openReadOnly(Storage written) throws IOException {
        // without a lock: the writable opening holds the file's write lock
        return new FileStorageProvider().open(written.location(), StorageOptions.readOnly().withLock(false));
    }
}
