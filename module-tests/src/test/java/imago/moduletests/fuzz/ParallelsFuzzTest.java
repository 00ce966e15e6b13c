package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the parallels driver's parsers: any bytes opened as {@code parallels} (the header, the catalog,
 * the format extension cluster), read through the generic I/O path, then written once where the image allows it
 * (which sets the in-use mark, allocates a cluster, and on close writes the catalog and cuts the file).
 *
 * <p>The committed corpus in
 * {@code src/test/resources/imago/moduletests/fuzz/ParallelsFuzzTestInputs/openAnyParallels/} holds qemu-img's
 * empty image and small ones with 4 KiB clusters under both magics, one marked in use, and one with a format
 * extension cluster. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=ParallelsFuzzTest#openAnyParallels -Djazzer.max_duration=10m
 * </pre>
 */
class ParallelsFuzzTest {
    private static final String NAME = "fuzz-parallels";

    /** Opens the bytes as a Parallels image, reads them as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyParallels(byte[] data) {
        FuzzContract.openWalkAndWrite(data, NAME, "parallels");
    }
}
