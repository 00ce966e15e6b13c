package imago.qed.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * qed against the conformance kit: 4 KiB clusters with two-cluster tables (so that an image of a few clusters
 * spans several L2 tables), the default 64 KiB clusters, and 4 KiB clusters over a raw backing file. Sizes are whole
 * sectors, resizes only grow, as in QEMU 7.2.
 */
class QedConformanceTest extends FormatConformanceTest {
    QedConformanceTest() {
        super("qed", FormatTraits.of(Preallocation.OFF).sizesIn(512).growingOnly(),
                Layout.of("4 KiB clusters", 4096, "cluster_size=4096,table_size=2"),
                Layout.of("64 KiB clusters", 65536, ""),
                Layout.of("4 KiB clusters over raw", 4096, "cluster_size=4096,table_size=2").overBackingFile());
    }
}
