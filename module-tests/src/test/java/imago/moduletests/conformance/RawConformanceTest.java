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
        // raw refuses metadata preallocation, as qemu's does
        super("raw", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)
                // finding: qemu-img rounds a raw file's virtual size up to whole 512-byte sectors (the tail reads
                // as zeroes, mapped "zero"); imago keeps the file's exact size. Remove once raw rounds as QEMU does.
                .divergingFromQemuMap("raw virtual size is not rounded up to 512-byte sectors"),
                Layout.of("raw", 4096, ""));
    }
}
