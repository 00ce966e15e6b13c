package imago.moduletests.conformance;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * The third-party {@code imagotst} plug-in against the conformance kit: what a format added by one module gets
 * checked by extending one class. qemu-img does not know it, so the differential test is skipped.
 */
class TstConformanceTest extends FormatConformanceTest {
    TstConformanceTest() {
        super("imagotst", FormatTraits.of(Preallocation.OFF, Preallocation.FULL),
                Layout.of("imagotst", 4096, ""));
    }
}
