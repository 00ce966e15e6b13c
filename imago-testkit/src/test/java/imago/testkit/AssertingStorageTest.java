package imago.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.Preallocation;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** Each rule of the asserting handle catches the misuse it names, and remembers it. */
class AssertingStorageTest {

    @Test
    void noRequestAfterClose() throws IOException {
        AssertingStorage s = new AssertingStorage(new FaultStorage("closed"), false, 1 << 20);
        s.close();
        assertThrows(AssertionError.class, () -> s.read(ByteBuffer.allocate(1), 0));
        assertThrows(AssertionError.class, s::flush);
        assertEquals(2, s.violations().size());
    }

    @Test
    void noChangeThroughAReadOnlyHandle() {
        AssertingStorage s = new AssertingStorage(new FaultStorage("ro"), true, 1 << 20);
        assertThrows(AssertionError.class, () -> s.write(ByteBuffer.allocate(1), 0));
        assertThrows(AssertionError.class, () -> s.writeZeroes(0, 1, true));
        assertThrows(AssertionError.class, () -> s.resize(0, Preallocation.OFF));
        assertEquals(3, s.violations().size());
    }

    @Test
    void requestsStayInBounds() {
        AssertingStorage s = new AssertingStorage(new FaultStorage("bounds"), false, 4096);
        assertThrows(AssertionError.class, () -> s.read(ByteBuffer.allocate(1), -1));
        assertThrows(AssertionError.class, () -> s.write(ByteBuffer.allocate(2), 4095));
        assertThrows(AssertionError.class, () -> s.discard(Long.MAX_VALUE, 2));
    }

    @Test
    void noOverlappingWritesInFlight() throws IOException {
        FaultStorage disk = new FaultStorage("overlap") {
            private AssertingStorage handle;

            @Override
            public synchronized void write(ByteBuffer src, long offset) throws IOException {
                if (handle == null) {
                    // a second write over the same bytes while this one is in flight
                    handle = outer[0];
                    handle.write(ByteBuffer.allocate(10), offset + 5);
                }
                super.write(src, offset);
            }
        };
        AssertingStorage s = new AssertingStorage(disk, false, 1 << 20);
        outer[0] = s;
        assertThrows(AssertionError.class, () -> s.write(ByteBuffer.allocate(10), 0));
        s.write(ByteBuffer.allocate(10), 100); // disjoint and after: fine
        assertEquals(1, s.violations().size());
    }

    private final AssertingStorage[] outer = new AssertingStorage[1];
}
