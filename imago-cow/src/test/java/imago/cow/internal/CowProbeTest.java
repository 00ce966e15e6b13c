package imago.cow.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
