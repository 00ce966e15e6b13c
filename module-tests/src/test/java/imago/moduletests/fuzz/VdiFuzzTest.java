package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the vdi driver's parsers: any bytes opened as {@code vdi} (the header, the block map and the
 * blocks it names), read through the generic I/O path, then written once where the image allows it (which
 * allocates a block and flushes the map and the header's count).
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/VdiFuzzTestInputs/openAnyVdi/} holds
 * qemu-img's empty, dynamic (one block written) and static images, and one with a zero block entry. To fuzz for
 * real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=VdiFuzzTest#openAnyVdi -Djazzer.max_duration=10m
 * </pre>
 */
class VdiFuzzTest {
    private static final String NAME = "fuzz-vdi";

    /** Opens the bytes as a VDI image, reads them as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyVdi(byte[] data) {
        FuzzContract.openWalkAndWrite(data, NAME, "vdi");
    }
}
