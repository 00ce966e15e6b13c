package imago.nbd.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BufferPoolTest {
    @Test
    void buffersAreDirectSizedAndReused() {
        BufferPool pool = new BufferPool();
        ByteBuffer a = pool.take(5000);
        assertTrue(a.isDirect());
        assertEquals(0, a.position());
        assertEquals(5000, a.limit());
        assertEquals(8192, a.capacity());
        a.put(new byte[100]);
        pool.give(a);
        ByteBuffer b = pool.take(8192);
        assertSame(a, b);
        assertEquals(0, b.position());
        assertEquals(8192, b.limit());
        // another size class is another buffer
        assertNotSame(b, pool.take(4096));
        assertEquals(4096, pool.take(1).capacity());
        assertEquals(BufferPool.LARGEST, pool.take(BufferPool.LARGEST).capacity());
    }

    @Test
    void payloadsPastTheLargestGetHeapBuffersThatAreNotKept() {
        BufferPool pool = new BufferPool();
        ByteBuffer big = pool.take(BufferPool.LARGEST + 1);
        assertFalse(big.isDirect());
        assertEquals(BufferPool.LARGEST + 1, big.remaining());
        pool.give(big);
        pool.give(null);
        assertNotSame(big, pool.take(BufferPool.LARGEST + 1));
    }

    @Test
    void idleBuffersAreKeptUpToTheBound() {
        BufferPool pool = new BufferPool();
        List<ByteBuffer> taken = new ArrayList<>();
        int count = BufferPool.RETAINED_BYTES / BufferPool.LARGEST + 2;
        for (int i = 0; i < count; i++) {
            taken.add(pool.take(BufferPool.LARGEST));
        }
        taken.forEach(pool::give);
        int reused = 0;
        for (int i = 0; i < count; i++) {
            ByteBuffer b = pool.take(BufferPool.LARGEST);
            reused += taken.stream().anyMatch(t -> t == b) ? 1 : 0;
        }
        assertEquals(BufferPool.RETAINED_BYTES / BufferPool.LARGEST, reused);
    }
}
