package imago.qcow.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * qcow (version 1) against the conformance kit: qemu-img's layout (4 KiB clusters, 512-entry tables) and, over a
 * raw backing file, its 512-byte clusters. Sizes are rounded up to a sector; create refuses only 0 bytes (a header
 * saying less than 2 is refused); qcow neither resizes nor checks, as in QEMU 7.2.
 */
class QcowConformanceTest extends FormatConformanceTest {
    QcowConformanceTest() {
        super("qcow", FormatTraits.of(Preallocation.OFF).roundingSizesUpTo(512).refusingEmptyImages(),
                Layout.of("4 KiB clusters", 4096, ""),
                Layout.of("512-byte clusters over raw", 512, "").overBackingFile());
    }
}
