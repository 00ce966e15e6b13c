package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import imago.api.CheckReport;
import imago.api.Feature;
import imago.api.Image;
import imago.api.Repair;
import imago.api.StorageLocation;
import imago.api.UnsupportedFeatureException;
import imago.probe.Imago;
import imago.storage.memory.MemoryStorage;
import java.io.IOException;

/**
 * Fuzz targets for the way every image is opened: any bytes, probed by every installed driver
 * (raw, qcow2, cow and the third-party imagotst), opened and read through the generic I/O path.
 *
 * <p>A normal test run replays the committed corpus in
 * {@code src/test/resources/imago/moduletests/fuzz/ImageFuzzTestInputs/<method>/} (regression mode):
 * raw images, imagotst images (valid, short, hostile sizes, bad version, truncated), complete qcow2
 * v2/v3 images with 512-byte clusters (clean for {@code qemu-img check}; one whose backing file is
 * itself, one whose backing file is missing; a bare header), and cow headers of every variant (QEMU
 * v2, UML v1 little-endian, v2, v3) with a bitmap and a data sector, and two VHDs (a dynamic disk with
 * 4 KiB blocks; a differencing disk whose parent is missing).
 * To fuzz for real (inputs found go to {@code module-tests/.cifuzz-corpus/}, findings to the
 * resource directory above, where they become regression inputs once committed):
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=ImageFuzzTest#openAnyImage -Djazzer.max_duration=10m
 * </pre>
 * {@code checkAnyImage} replays the qcow2 and raw inputs of the same corpus, opened for checking.
 */
class ImageFuzzTest {
    private static final String NAME = "fuzz-image";

    /** Probes and opens read-only whatever the bytes are, then reads it as a user would. */
    @FuzzTest(maxDuration = "2m")
    void openAnyImage(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).open()) {
            FuzzContract.walk(image);
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }

    /**
     * Opens whatever the bytes are for checking, writable, and checks and repairs it: a format without
     * checks says so, every other outcome is a report; damage never escapes as an exception.
     */
    @FuzzTest(maxDuration = "2m")
    void checkAnyImage(byte[] data) {
        MemoryStorage.of(NAME, data).close();
        try (Image image = Imago.opener().location(StorageLocation.memory(NAME)).forCheck(true).writable(true)
                .open()) {
            try {
                for (Repair repair : new Repair[] {Repair.NONE, Repair.LEAKS, Repair.ALL, Repair.NONE}) {
                    CheckReport report = image.check(repair);
                    if (report.exitStatus() < 0 || report.exitStatus() > 3) {
                        throw new AssertionError("exit status " + report.exitStatus());
                    }
                }
            } catch (UnsupportedFeatureException e) {
                if (e.feature() != Feature.CHECK) {
                    throw new AssertionError("check threw " + e, e);
                }
            } catch (IOException | RuntimeException e) {
                throw new AssertionError("check threw instead of reporting: " + e, e);
            }
        } catch (IOException | RuntimeException e) {
            FuzzContract.expected(e);
        } finally {
            MemoryStorage.delete(NAME);
        }
    }
}
