package imago.moduletests.conformance;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * raw against the conformance kit. It runs here rather than in imago-raw because the kit opens images through
 * imago-probe, whose own tests use imago-raw (a Maven reactor cycle otherwise).
 */
class RawConformanceTest extends FormatConformanceTest {
    RawConformanceTest() {
        // raw refuses metadata preallocation, as qemu's does; a partial last sector counts whole, as in QEMU
        super("raw", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)
                .roundingSizesUpTo(512), Layout.of("raw", 4096, ""));
    }
}
