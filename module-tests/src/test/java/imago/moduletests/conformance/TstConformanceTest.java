package imago.moduletests.conformance;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;
import java.util.List;

/**
 * The third-party {@code imagotst} plug-in against the conformance kit: what a format added by one module gets
 * checked by extending one class. qemu-img does not know it, so the differential test is skipped.
 */
class TstConformanceTest extends FormatConformanceTest {

    @Override
    protected String format() {
        return "imagotst";
    }

    @Override
    protected List<Layout> layouts() {
        return List.of(Layout.of("imagotst", 4096, ""));
    }

    @Override
    protected FormatTraits traits() {
        return FormatTraits.of(Preallocation.OFF, Preallocation.FULL).growingAndShrinking();
    }
}
