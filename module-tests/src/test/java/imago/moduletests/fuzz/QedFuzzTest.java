package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the qed driver's parsers: any bytes opened as {@code qed} (header checks, L1 and L2 tables,
 * backing file name), read through the generic I/O path, then written once into a writable open (which also runs
 * the need-check repair on images marked so).
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/QedFuzzTestInputs/openAnyQed/} holds
 * qemu-img's empty image with 4 KiB clusters, one with data in two L2 tables and a zero cluster, and one naming a
 * backing file (missing). To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=QedFuzzTest#openAnyQed -Djazzer.max_duration=10m
 * </pre>
 */
class QedFuzzTest {
    private static final String NAME = "fuzz-qed";

    /** Opens the bytes as a QED image, reads them as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyQed(byte[] data) {
        FuzzContract.openWalkAndWrite(data, NAME, "qed");
    }
}
