package imago.moduletests.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Fuzz target for the vpc (VHD) driver's parsers: any bytes opened as {@code vpc} (so that the footer at the end
 * of a fixed disk is parsed as well as the footer copy, dynamic header, BAT, bitmaps and parent locators of the
 * others), read through the generic I/O path, then written once where the image allows it.
 *
 * <p>The committed corpus in {@code src/test/resources/imago/moduletests/fuzz/VpcFuzzTestInputs/openAnyVhd/}
 * holds a dynamic disk with 4 KiB blocks, a differencing disk (W2ru and W2ku locators, bitmaps with holes,
 * parent missing), a fixed disk, and qemu-img's empty and 1 MiB dynamic disks. To fuzz for real:
 *
 * <pre>
 * JAZZER_FUZZ=1 ./mvnw -pl module-tests test -Dtest=VpcFuzzTest#openAnyVhd -Djazzer.max_duration=10m
 * </pre>
 */
class VpcFuzzTest {
    private static final String NAME = "fuzz-vhd";

    /** Opens the bytes as a VHD, reads them as a user would, and writes a sector into a writable open. */
    @FuzzTest(maxDuration = "2m")
    void openAnyVhd(byte[] data) {
        FuzzContract.openWalkAndWrite(data, NAME, "vpc");
    }
}
