package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.spi.Confidence;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class CowProbeTest {
    private final CowFormatDriver driver = new CowFormatDriver();

    private static ByteBuffer header(ByteOrder order, int version) {
        return ByteBuffer.allocate(1056).order(order).putInt(CowFormatDriver.MAGIC).putInt(version).clear()
                .asReadOnlyBuffer();
    }

    @Test
    void recognisesEveryVariantsVersion() {
        for (int v = 1; v <= 3; v++) {
            assertEquals(Confidence.STRONG, driver.probe(header(ByteOrder.BIG_ENDIAN, v), 1 << 20), "v" + v);
        }
        assertEquals(Confidence.STRONG, driver.probe(header(ByteOrder.LITTLE_ENDIAN, 1), 1 << 20));
    }

    @Test
    void rejectsUnknownVersionsAndOtherMagic() {
        assertEquals(Confidence.NONE, driver.probe(header(ByteOrder.BIG_ENDIAN, 4), 1 << 20));
        assertEquals(Confidence.NONE, driver.probe(header(ByteOrder.LITTLE_ENDIAN, 2), 1 << 20));
        assertEquals(Confidence.NONE, driver.probe(ByteBuffer.allocate(512).asReadOnlyBuffer(), 512));
        assertEquals(Confidence.NONE, driver.probe(ByteBuffer.allocate(3).asReadOnlyBuffer(), 3));
    }

    @Test
    void everyVariantProbesStrongAndTheHeaderFitsTheProbeWindow() {
        assertEquals(4136, driver.probeLength());
        for (CowVariant v : CowVariant.values()) {
            byte[] h = CowImages.header(CowImages.Spec.of(v, "base", 4096));
            assertTrue(h.length <= driver.probeLength(), v.toString());
            assertEquals(Confidence.STRONG, driver.probe(ByteBuffer.wrap(h).asReadOnlyBuffer(), 1 << 20), v.toString());
        }
        byte[] le = CowImages.header(CowImages.Spec.of(CowVariant.UML_V1, "base", 4096)
                .withOrder(ByteOrder.LITTLE_ENDIAN));
        assertEquals(Confidence.STRONG, driver.probe(ByteBuffer.wrap(le).asReadOnlyBuffer(), 1 << 20));
    }

    @Test
    void randomBytesAndQcow2AreNotCow() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (int i = 0; i < 1000; i++) {
            byte[] b = CowTestSupport.random(r, r.nextInt(4200));
            assertEquals(Confidence.NONE, driver.probe(ByteBuffer.wrap(b).asReadOnlyBuffer(), b.length));
        }
        ByteBuffer qcow2 = ByteBuffer.allocate(512).putInt(0x514649FB).putInt(3).clear();
        assertEquals(Confidence.NONE, driver.probe(qcow2.asReadOnlyBuffer(), 1 << 20));
    }
}
