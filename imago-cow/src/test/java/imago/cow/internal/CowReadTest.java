package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ImageInfo;
import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Images written by the structs of QEMU and UML read back as the bitmap says, for every variant. */
class CowReadTest {

    static Stream<Arguments> specs() {
        List<Arguments> out = new ArrayList<>();
        for (CowVariant v : CowVariant.values()) {
            boolean qemu = v == CowVariant.QEMU_V2 || v == CowVariant.QEMU_V2_32BIT;
            for (long size : qemu ? new long[] {512, 40 * 512, 4096 * 9, 200 * 512}
                    : new long[] {1, 512, 40 * 512 + 100, 4096 * 9, 77_777}) {
                out.add(Arguments.of(CowImages.Spec.of(v, "base", size)));
            }
        }
        out.add(Arguments.of(CowImages.Spec.of(CowVariant.UML_V1, "base", 40_000).withOrder(ByteOrder.LITTLE_ENDIAN)));
        out.add(Arguments.of(CowImages.Spec.of(CowVariant.UML_V3, "base", 40_000).withAlignment(4096)));
        out.add(Arguments.of(CowImages.Spec.of(CowVariant.UML_V3_BROKEN, "base", 40_000).withAlignment(65536)));
        out.add(Arguments.of(CowImages.Spec.of(CowVariant.UML_V2, "base", 40_000).withSectorSize(4096)));
        out.add(Arguments.of(CowImages.Spec.of(CowVariant.UML_V3, "base", 100_000).withSectorSize(1024)
                .withAlignment(4096)));
        return out.stream();
    }

    @ParameterizedTest
    @MethodSource("specs")
    void readsWhatTheBitmapSays(CowImages.Spec template) throws IOException {
        SplittableRandom r = new SplittableRandom(template.hashCode());
        String base = CowTestSupport.name("read-base");
        CowImages.Spec spec = new CowImages.Spec(template.variant(), template.v1Order(), base, template.mtime(),
                template.size(), template.sectorSize(), template.alignment());
        byte[] backing = CowTestSupport.random(r, (int) spec.size());
        CowTestSupport.backing(base, backing);
        BitSet present = CowTestSupport.randomBits(r, spec.bitCapacity());
        byte[] data = CowTestSupport.random(r, (int) spec.size());
        String name = CowTestSupport.name("read");
        byte[] expected = CowTestSupport.cow(name, spec, present, data, backing);
        try (Image image = CowTestSupport.open(name, false)) {
            assertEquals("cow", image.format());
            assertEquals(spec.size(), image.size());
            assertArrayEquals(expected, CowTestSupport.readAll(image));
            // random unaligned reads
            for (int i = 0; i < 50; i++) {
                int off = r.nextInt(expected.length);
                int len = r.nextInt(expected.length - off + 1);
                ByteBuffer b = ByteBuffer.allocate(len);
                image.read(b, off);
                assertArrayEquals(Arrays.copyOfRange(expected, off, off + len), b.array(), "read at " + off);
            }
            ImageInfo info = image.info();
            assertEquals(spec.variant().displayName(), info.formatSpecific().get("variant"));
            assertEquals(spec.mtime(), info.formatSpecific().get("backing-mtime"));
            assertEquals(spec.dataOffset(), info.formatSpecific().get("data-offset"));
            assertEquals(base, info.backingFilename().orElseThrow());
            checkRuns(image, spec, present);
        }
    }

    /** Mappings alternate between present and absent runs, each as long as the bitmap run. */
    static void checkRuns(Image image, CowImages.Spec spec, BitSet present) throws IOException {
        long pos = 0;
        Boolean previous = null;
        while (pos < spec.size()) {
            Mapping m = ((imago.api.spi.LayeredImage) image).layer().mapping(pos, spec.size() - pos);
            boolean data = m instanceof Mapping.Data;
            if (!data) {
                assertInstanceOf(Mapping.Unallocated.class, m);
            } else {
                assertEquals(spec.dataOffset() + pos, ((Mapping.Data) m).hostOffset());
            }
            if (previous != null) {
                assertNotEquals(previous, data, "runs not merged at " + pos);
            }
            long first = pos / spec.sectorSize();
            long last = (pos + m.length() - 1) / spec.sectorSize();
            for (long s = first; s <= last; s++) {
                assertEquals(data, present.get((int) s), "sector " + s + " in " + m);
            }
            previous = data;
            pos += m.length();
        }
        assertTrue(pos == spec.size());
    }
}
