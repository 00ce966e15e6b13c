package imago.vdi.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * vdi against the conformance kit: dynamic and static images (1 MiB blocks, the only size QEMU reads). Sizes are
 * rounded up to a sector, as qemu-img rounds them; neither resizes nor repairs, as in QEMU 7.2.
 *
 * <p>The header counts the allocated blocks in a sector apart from the entries it counts, so no write order keeps
 * both true through every power loss: imago writes the count first, and a crash between the two leaves a count
 * ahead of the entries, which {@code qemu-img check} reports as one corruption ("allocated blocks mismatch, is N,
 * should be M", N &lt; M) while no data is lost and QEMU's next allocation takes a fresh block. The crash test accepts
 * that message alone, and only with the count ahead.
 */
class VdiConformanceTest extends FormatConformanceTest {
    private static final Pattern MISMATCH = Pattern.compile(
            "ERROR: allocated blocks mismatch, is (\\d+), should be (\\d+)");

    VdiConformanceTest() {
        super("vdi", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)
                        .roundingSizesUpTo(512).allowingCrashError(VdiConformanceTest::countAhead),
                Layout.of("dynamic", 1 << 20, "static=off"),
                Layout.of("static", 1 << 20, "static=on"));
    }

    /** Whether {@code message} is QEMU's count mismatch with the header's count ahead of the entries. */
    static boolean countAhead(String message) {
        Matcher m = MISMATCH.matcher(message);
        return m.matches() && Long.parseLong(m.group(1)) < Long.parseLong(m.group(2));
    }
}
