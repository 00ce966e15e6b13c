package imago.vpc.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * vpc against the conformance kit: dynamic disks (2 MiB blocks, as qemu-img makes them) and fixed ones, both with
 * {@code force_size=on}, so that the virtual size is the one asked for rounded up to a sector (without it, qemu-img
 * and imago round it up to a CHS geometry, which the kit does not expect). Neither resizes nor checks, as in QEMU
 * 7.2, and no layout is over a backing file (a VHD's parent is another VHD, never a raw file; the differencing
 * tests cover parents). A fixed disk starts with guest data and probes as raw, in qemu-img as in imago.
 */
class VpcConformanceTest extends FormatConformanceTest {
    VpcConformanceTest() {
        super("vpc", FormatTraits.of(Preallocation.OFF).roundingSizesUpTo(512),
                Layout.of("dynamic", 2 << 20, "subformat=dynamic,force_size=on"),
                Layout.of("fixed", 4096, "subformat=fixed,force_size=on").probingAsRaw());
    }
}
