package imago.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class Qcow2CompressBuffersTest {
    /** More takes than the pool can hold: empties it, whatever other tests left in it. */
    private static final int DRAIN = 4 * Runtime.getRuntime().availableProcessors() + 8;

    @Test
    void givesDirectBuffersLargeEnoughAndCleared() {
        for (int capacity : new int[] {1, 4096, 131072, 4 << 20}) {
            ByteBuffer b = Qcow2CompressBuffers.take(capacity);
            assertTrue(b.isDirect());
            assertTrue(b.capacity() >= capacity, b.capacity() + " < " + capacity);
            assertEquals(0, b.position());
            assertEquals(b.capacity(), b.limit());
            Qcow2CompressBuffers.give(b.position(3).limit(5));
        }
    }

    @Test
    void reusesWhatIsGivenBackButNotTooMuch() {
        List<ByteBuffer> taken = new ArrayList<>();
        for (int i = 0; i < DRAIN; i++) {
            taken.add(Qcow2CompressBuffers.take(1));
        }
        ByteBuffer mine = ByteBuffer.allocateDirect(8192).position(100);
        Qcow2CompressBuffers.give(mine);
        ByteBuffer again = Qcow2CompressBuffers.take(4096);
        assertTrue(again == mine, "the buffer given back is taken again");
        assertEquals(0, again.position());
        // a buffer larger than all the pool keeps is dropped
        ByteBuffer huge = ByteBuffer.allocateDirect(33 << 20);
        Qcow2CompressBuffers.give(huge);
        for (int i = 0; i < DRAIN; i++) {
            assertNotSame(huge, Qcow2CompressBuffers.take(1));
        }
        taken.forEach(Qcow2CompressBuffers::give);
    }
}
