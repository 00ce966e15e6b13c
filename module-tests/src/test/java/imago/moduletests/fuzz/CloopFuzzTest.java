package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

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
        FuzzContract.openAndWalk(data, NAME, "cloop");
    }
}
