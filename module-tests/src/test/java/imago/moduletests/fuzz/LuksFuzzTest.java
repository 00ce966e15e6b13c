package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.probe.Opener;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Fuzz target for the luks driver's LUKS1 header parser and key-slot unlock: any bytes opened as {@code luks} with
 * the passphrase {@code abc} and a PBKDF2 limit of 5000 iterations (so that hostile counts are refused, not run),
 * read through the generic I/O path, then written once where the image opens writable.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/LuksFuzzTestInputs/openAnyLuks/}
 * holds two cryptsetup containers (aes-cbc-plain 128-bit and aes-xts-plain64 256-bit, 1000 iterations, passphrase
 * {@code abc}) and two imago made (cast5-cbc-essiv:md5 and twofish-ctr-plain64, 128-bit, 1000 iterations; Bouncy
 * Castle is not in this module's graph, so they stay at the refusal by name unless it is added), each with the
 * payload moved up to just after slot 0's material, so that they stay small. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=LuksFuzzTest#openAnyLuks -Djazzer.max_duration=10m
 * </pre>
 */
class LuksFuzzTest {
    private static final String NAME = "fuzz-luks";

    private static Opener opener() {
        return Imago.opener().location(StorageLocation.memory(NAME)).format("luks")
                .secret("sec0", "abc".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0")
                .option("pbkdf-max-iterations", "5000");
    }

    /** Opens the bytes as LUKS1, reads them as a user would, and writes across a sector boundary. */
    @FuzzTest(maxDuration = "2m")
    void openAnyLuks(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try {
            try (Image image = opener().open()) {
                FuzzContract.walk(image);
            }
            try (Image image = opener().writable(true).open()) {
                FuzzContract.writeAndWalk(image, 1536, 700);
            }
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }
}
