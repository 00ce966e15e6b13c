package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import imago.api.spi.Confidence;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Qcow2ProbeTest {
    private final Qcow2FormatDriver driver = new Qcow2FormatDriver();

    private static ByteBuffer header(int magic, int version) {
        return ByteBuffer.allocate(512).putInt(magic).putInt(version).clear().asReadOnlyBuffer();
    }

    @Test
    void recognisesVersions2And3() {
        assertEquals(Confidence.STRONG, driver.probe(header(Qcow2FormatDriver.MAGIC, 2), 1 << 20));
        assertEquals(Confidence.STRONG, driver.probe(header(Qcow2FormatDriver.MAGIC, 3), 1 << 20));
    }

    @Test
    void rejectsVersion1OtherMagicShortAndRandomInput() {
        assertEquals(Confidence.NONE, driver.probe(header(Qcow2FormatDriver.MAGIC, 1), 1 << 20));
        assertEquals(Confidence.NONE, driver.probe(header(0x4F4F4F4D, 2), 1 << 20));
        assertEquals(Confidence.NONE, driver.probe(ByteBuffer.allocate(4).asReadOnlyBuffer(), 4));
        Random random = new Random(42);
        for (int i = 0; i < 1000; i++) {
            byte[] bytes = new byte[random.nextInt(64)];
            random.nextBytes(bytes);
            if (bytes.length >= 4 && bytes[0] == 'Q' && bytes[1] == 'F' && bytes[2] == 'I') {
                continue;
            }
            assertEquals(Confidence.NONE, driver.probe(ByteBuffer.wrap(bytes).asReadOnlyBuffer(), bytes.length));
        }
    }
}
