package imago.cow.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * cow against the conformance kit: the two variants imago creates, QEMU's alone and UML's v3 over a backing
 * file. Neither resizes, and neither has metadata that a check could find wrong.
 */
class CowConformanceTest extends FormatConformanceTest {
    CowConformanceTest() {
        // a bitmap byte covers 4 KiB: offsets cluster around its edges
        super("cow", FormatTraits.of(Preallocation.OFF), Layout.of("QEMU variant", 4096, "variant=qemu"),
                Layout.of("UML v3 variant", 4096, "variant=uml-v3").overBackingFile());
    }
}
