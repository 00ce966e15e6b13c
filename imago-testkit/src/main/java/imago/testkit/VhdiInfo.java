package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;

/**
 * Runs libvhdi's {@code vhdiinfo}, the independent VHD and VHDX reader in Debian's libvhdi-utils, for the vpc and vhdx
 * tests. Without it a test is skipped, unless {@code IMAGO_REQUIRE_QEMU=1} is set (as CI sets it), when it fails.
 */
public final class VhdiInfo {
    private VhdiInfo() {
    }

    /** vhdiinfo's report of {@code image} (run in {@code dir}), asserting that it accepted the image. */
    public static String run(Path dir, Path image) {
        Qemu.tool("vhdiinfo");
        Qemu.Output o = Qemu.run(dir, "vhdiinfo", image);
        assertEquals(0, o.status(), () -> "vhdiinfo refused " + image + ":\n" + o.out() + o.err());
        return o.out();
    }

    /** Asserts that vhdiinfo accepts {@code image} as a disk of {@code size} bytes, fixed or dynamic. */
    public static void assertDisk(Path dir, Path image, long size, boolean fixed) {
        String info = run(dir, image);
        assertTrue(info.contains("(" + size + " bytes)"), info);
        assertTrue(info.contains(fixed ? "Disk type\t\t: Fixed" : "Disk type\t\t: Dynamic"), info);
    }
}
