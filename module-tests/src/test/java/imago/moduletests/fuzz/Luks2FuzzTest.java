package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.Image;
import imago.api.Secrets;
import imago.api.StorageLocation;
import imago.probe.Imago;
import imago.probe.Opener;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Fuzz target for the luks driver's LUKS2 header parser (both binary copies, their checksums, the JSON metadata
 * and its checks against the file) and key-slot unlock: any bytes opened as {@code luks}, first without a secret
 * (the header only, as {@code info} opens it), then with the passphrase {@code abc} under small KDF limits (5000
 * PBKDF2 iterations, 256 KiB and 2048 KiB-passes of Argon2, so that hostile costs are refused, not run), read
 * through the generic I/O path and written once where the image opens writable; then a key slot is added
 * ({@code amend}) and the image opened again.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/Luks2FuzzTestInputs/openAnyLuks2/}
 * holds two cryptsetup 2.6 LUKS2 containers made small with {@code --luks2-keyslots-size 131072 --offset 320}
 * (aes-xts-plain64 256-bit, passphrase {@code abc}): one with a PBKDF2 slot (1000 iterations) and 512-byte
 * sectors, one with an Argon2id slot (64 KiB, 4 passes) and 4096-byte sectors; the first one's two header
 * copies alone; and {@code pbkdf2-xts-room-for-two}, made with {@code --luks2-keyslots-size 262144 --offset 576},
 * whose key-slot area has room for the slot the amend adds (the others' refuse it: no room). To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=Luks2FuzzTest#openAnyLuks2 -Djazzer.max_duration=10m
 * </pre>
 */
class Luks2FuzzTest {
    private static final String NAME = "fuzz-luks2";

    private static Opener opener() {
        return Imago.opener().location(StorageLocation.memory(NAME)).format("luks")
                .secret("sec0", "abc".getBytes(StandardCharsets.UTF_8)).option("key-secret", "sec0")
                .option("pbkdf-max-iterations", "5000").option("argon2-max-memory", "256")
                .option("argon2-max-work", "2048");
    }

    /** Opens the bytes as LUKS2 (locked, then unlocked), reads them, and writes across a sector boundary. */
    @FuzzTest(maxDuration = "2m")
    void openAnyLuks2(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try {
            try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).format("luks").metadataOnly(true).open()) {
                image.info();
            }
            try (Image image = opener().open()) {
                FuzzContract.walk(image);
            }
            try (Image image = opener().writable(true).open()) {
                FuzzContract.writeAndWalk(image, 5000, 2500);
            }
            amendAndReopen();
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }

    /**
     * Adds a PBKDF2 key slot (the header rewritten, both copies) and opens the result again: an amend either refuses
     * as qemu-img does ({@link IllegalArgumentException}: no free slot, no room) or leaves an image that opens.
     */
    private static void amendAndReopen() throws IOException {
        try (Secrets s = Secrets.create().put("sec0", "abc".getBytes(StandardCharsets.UTF_8))) {
            opener().secrets(s).amend(Map.of("state", "active", "new-secret", "sec0", "iter-time", "1", "pbkdf",
                    "pbkdf2"), false, p -> { });
        } catch (IllegalArgumentException refused) {
            return;
        }
        try (Image image = opener().open()) {
            FuzzContract.walk(image);
        }
    }
}
