package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the bochs driver's parser: any bytes opened as {@code bochs} (header, catalog, block bitmaps) and
 * read through the generic I/O path as a user would.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/BochsFuzzTestInputs/openAnyBochs/}
 * holds version 1 and 2 images with 512-byte, 4 KiB and 8 KiB extents, some extents and sectors never written. To
 * fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=BochsFuzzTest#openAnyBochs -Djazzer.max_duration=10m
 * </pre>
 */
class BochsFuzzTest {
    private static final String NAME = "fuzz-bochs";

    /** Opens the bytes as a bochs image and walks it. */
    @FuzzTest(maxDuration = "2m")
    void openAnyBochs(byte[] data) {
        FuzzContract.openAndWalk(data, NAME, "bochs");
    }
}
