package imago.api.spi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import imago.api.Mapping;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.api.Test;

/**
 * The allocating ticket's protocol: commit at most once, abort only without a commit (a failed one included), and
 * the lock released by the first close whatever the hooks throw.
 */
class AllocatingWriteTicketTest {
    private final ArrayStorage storage = new ArrayStorage(4096, 1);
    private final Mapping.Data mapping = new Mapping.Data(512, 512, storage, 1024);
    private final ReentrantLock lock = new ReentrantLock();
    private final List<String> events = new ArrayList<>();

    /** Records its hooks; fails them on request. */
    private final class Recording extends AllocatingWriteTicket {
        boolean failCommit;
        boolean failAbort;

        Recording() {
            super(mapping, lock);
        }

        @Override
        protected void onCommit() throws IOException {
            events.add("commit, locked " + lock.isHeldByCurrentThread());
            if (failCommit) {
                throw new IOException("commit failed");
            }
        }

        @Override
        protected void onAbort() throws IOException {
            events.add("abort, locked " + lock.isHeldByCurrentThread());
            if (failAbort) {
                throw new IOException("abort failed");
            }
        }
    }

    @Test
    void aCommittedWriteIsNotAbortedAndItsCloseUnlocks() throws IOException {
        lock.lock();
        try (Recording t = new Recording()) {
            assertSame(mapping, t.mapping());
            t.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            t.commit();
        }
        assertEquals(List.of("commit, locked true"), events);
        assertFalse(lock.isLocked());
        byte[] written = new byte[3];
        System.arraycopy(storage.bytes(), 1024, written, 0, 3);
        assertArrayEquals(new byte[] {1, 2, 3}, written, "the default write goes to the mapping's host offset");
    }

    @Test
    void aCloseWithoutCommitAbortsUnderTheLockThenUnlocks() throws IOException {
        lock.lock();
        new Recording().close();
        assertEquals(List.of("abort, locked true"), events);
        assertFalse(lock.isLocked());
    }

    @Test
    void aSecondCommitIsACallerMistake() throws IOException {
        lock.lock();
        try (Recording t = new Recording()) {
            t.commit();
            assertThrows(IllegalStateException.class, t::commit);
        }
        assertEquals(List.of("commit, locked true"), events);
    }

    @Test
    void aFailedCommitIsAbortedOnClose() throws IOException {
        lock.lock();
        Recording t = new Recording();
        t.failCommit = true;
        assertThrows(IOException.class, t::commit);
        t.close();
        assertEquals(List.of("commit, locked true", "abort, locked true"), events);
        assertFalse(lock.isLocked());
    }

    @Test
    void aFailedAbortStillUnlocksAndASecondCloseDoesNothing() throws IOException {
        lock.lock();
        lock.lock(); // held twice: a second unlock by a second close would show
        Recording t = new Recording();
        t.failAbort = true;
        assertThrows(IOException.class, t::close);
        t.close();
        assertEquals(List.of("abort, locked true"), events);
        assertEquals(1, lock.getHoldCount());
        lock.unlock();
    }

    @Test
    void theDefaultAbortGivesNothingBack() throws IOException {
        lock.lock();
        new AllocatingWriteTicket(mapping, lock) {
            @Override
            protected void onCommit() {
                events.add("commit");
            }
        }.close();
        assertEquals(List.of(), events);
        assertFalse(lock.isLocked());
    }
}
