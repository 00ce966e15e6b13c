package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the dmg driver's parsers: any bytes opened as {@code dmg} (the koly trailer, the resource fork or
 * XML property list, the mish block tables, zlib chunks) and read through the generic I/O path as a user would.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/DmgFuzzTestInputs/openAnyDmg/}
 * holds an XML-listed image of raw, zlib, zero and ignored chunks, a resource-fork image of zlib chunks, and one
 * with a bzip2 chunk and a comment. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=DmgFuzzTest#openAnyDmg -Djazzer.max_duration=10m
 * </pre>
 */
class DmgFuzzTest {
    private static final String NAME = "fuzz-dmg";

    /** Opens the bytes as a dmg image and walks it. */
    @FuzzTest(maxDuration = "2m")
    void openAnyDmg(byte[] data) {
        FuzzContract.openAndWalk(data, NAME, "dmg");
    }
}
