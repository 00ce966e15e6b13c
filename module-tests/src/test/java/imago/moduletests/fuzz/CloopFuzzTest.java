package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;

/**
 * Fuzz target for the cloop driver's parser: any bytes opened as {@code cloop} (block size and count, offsets table,
 * zlib blocks) and read through the generic I/O path as a user would.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/CloopFuzzTestInputs/openAnyCloop/}
 * holds version 2.0 images of 512-byte and 4 KiB blocks and a version 3.0 one of 1 KiB blocks, blocks of zeroes, of
 * one repeated byte and of random bytes. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=CloopFuzzTest#openAnyCloop -Djazzer.max_duration=10m
 * </pre>
 */
class CloopFuzzTest {
    private static final String NAME = "fuzz-cloop";

    /** Opens the bytes as a cloop image and walks it (every block read inflates it). */
    @FuzzTest(maxDuration = "2m")
    void openAnyCloop(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("cloop").open()) {
            FuzzContract.walk(image);
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }
}
