package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

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
        FuzzContract.openWalkAndWrite(data, NAME, "qcow");
    }
}
