package imago.vhdx.internal;

import imago.testkit.Qemu;
import java.nio.file.Path;
import org.junit.jupiter.api.Assertions;

/**
 * Runs libvhdi's {@code vhdiinfo}, the independent VHD and VHDX reader in Debian's libvhdi-utils. Without it a test is
 * skipped, unless {@code IMAGO_REQUIRE_QEMU=1} is set (as CI sets it), when it fails.
 */
final class VhdiInfo {
    private VhdiInfo() {
    }

    /** vhdiinfo's report of {@code image}, asserting that it accepted the image. */
    static String run(Path dir, Path image) {
        require();
        Qemu.Output o = Qemu.run(dir, "vhdiinfo", image);
        Assertions.assertEquals(0, o.status(), () -> "vhdiinfo refused " + image + ":\n" + o.out() + o.err());
        return o.out();
    }

    static void require() {
        Qemu.tool("vhdiinfo");
    }
}
