package imago.vmdk.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * vmdk against the conformance kit: monolithicSparse, the subformat qemu-img creates by default, with and without
 * zeroed-grain entries (64 KiB grains, the only size QEMU creates). The kit's images are single files that it writes
 * anywhere, so streamOptimized (append-only), the subformats kept in several files and delta disks (whose parent must
 * be a vmdk, not the kit's raw one) are proved by the module's own differential tests instead. vmdk neither resizes
 * nor repairs, rounds sizes up to whole sectors, as QEMU does, and refuses to create an image of 0 bytes, which no
 * one could open.
 */
class VmdkConformanceTest extends FormatConformanceTest {
    VmdkConformanceTest() {
        super("vmdk", FormatTraits.of(Preallocation.OFF).roundingSizesUpTo(512).refusingEmptyImages(),
                Layout.of("monolithicSparse", 65536, ""),
                Layout.of("monolithicSparse, zeroed grains", 65536, "zeroed_grain=on"));
    }
}
