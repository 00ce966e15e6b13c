package imago.parallels.internal;

import imago.api.Preallocation;
import imago.testkit.FormatConformanceTest;
import imago.testkit.FormatTraits;
import imago.testkit.Layout;

/**
 * parallels against the conformance kit, with QEMU's default 1 MiB clusters and with 64 KiB ones. Sizes are rounded
 * up to a sector, as qemu-img rounds them; it does not resize, as in QEMU 7.2.
 *
 * <p>A writable open marks the image in use until its clean close, so the file a power loss leaves always has the
 * mark: {@code qemu-img check} then reports "image was not closed correctly" as one corruption (and refuses a
 * writable open until {@code check -r all}), which is the format's way of saying the image must be checked. The
 * crash test accepts that error alone; every flushed byte must still read back.
 */
class ParallelsConformanceTest extends FormatConformanceTest {
    ParallelsConformanceTest() {
        super("parallels", FormatTraits.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)
                        .roundingSizesUpTo(512).allowingCrashError(ParallelsConformanceTest::notClosed),
                Layout.of("1M clusters", 1 << 20, ""),
                Layout.of("64k clusters", 64 << 10, "cluster_size=64k"));
    }

    static boolean notClosed(String message) {
        return message.equals("ERROR image was not closed correctly");
    }
}
