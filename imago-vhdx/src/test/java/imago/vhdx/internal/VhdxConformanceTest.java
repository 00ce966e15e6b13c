package imago.vhdx.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * vhdx against the conformance kit: dynamic disks with 1 MiB blocks (so that the kit's writes allocate many blocks)
 * and fixed ones with blocks present from the start ({@code block_state_zero=off}: written in place). Neither
 * resizes, as in QEMU 7.2; an image of 0 bytes is refused at creation (qemu-img writes a 64 MiB BAT for it). A file
 * a crash left with a log to replay is opened writable first (a read-only open refuses it, as QEMU's does).
 */
class VhdxConformanceTest extends FormatConformanceTest {
    VhdxConformanceTest() {
        super("vhdx", FormatTraits.of(Preallocation.OFF).roundingSizesUpTo(512).refusingEmptyImages()
                        .recoveringWhenOpenedWritable(),
                Layout.of("dynamic", 1 << 20, "block_size=1M"),
                Layout.of("fixed", 1 << 20, "subformat=fixed,block_size=1M,block_state_zero=off"));
    }
}
