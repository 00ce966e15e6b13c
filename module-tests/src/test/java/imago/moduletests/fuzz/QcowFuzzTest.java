package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Fuzz target for the qcow (version 1) driver's parsers: any bytes opened as {@code qcow} (header checks, L1 and L2
 * tables, compressed clusters, backing file name), read through the generic I/O path, then written once into a
 * writable open.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/QcowFuzzTestInputs/openAnyQcow/}
 * holds qemu-img's empty image, one with data and one with compressed clusters. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=QcowFuzzTest#openAnyQcow -Djazzer.max_duration=10m
 * </pre>
 */
class QcowFuzzTest {
    private static final String NAME = "fuzz-qcow";

    /** Opens the bytes as a qcow image, reads them as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyQcow(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try {
            try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("qcow").open()) {
                FuzzContract.walk(image);
            }
            try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("qcow").writable(true)
                    .open()) {
                if (image.size() > 0) {
                    image.write(ByteBuffer.allocate((int) Math.min(1536, image.size())), image.size() / 2
                            - Math.min(image.size() / 2, 700));
                    image.flush();
                }
                FuzzContract.walk(image);
            }
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }
}
