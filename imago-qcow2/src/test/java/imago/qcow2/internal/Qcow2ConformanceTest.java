package imago.qcow2.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/** qcow2 against the conformance kit: the default layout, small clusters and refcounts, subclusters, an overlay. */
class Qcow2ConformanceTest extends FormatConformanceTest {
    Qcow2ConformanceTest() {
        super("qcow2", FormatTraits.of(Preallocation.OFF, Preallocation.METADATA, Preallocation.FALLOC,
                Preallocation.FULL).sizesIn(512).refusingPreallocatedShrinks(),
                Layout.of("64 KiB clusters", 65536, ""),
                Layout.of("4 KiB clusters, 2-bit refcounts", 4096, "cluster_size=4096,refcount_bits=2"),
                Layout.of("16 KiB clusters, extended L2", 16384, "cluster_size=16384,extended_l2=on"),
                Layout.of("4 KiB clusters", 4096, "cluster_size=4096").overBackingFile());
    }
}
