package imago.vhdx.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
import imago.api.ReadOnlyImageException;
import imago.api.StorageLocation;
import imago.api.spi.FormatInstance;
import imago.api.spi.LayeredImage;
import imago.api.spi.OpenContext;
import imago.api.spi.Storage;
import imago.storage.memory.MemoryStorage;
import imago.testkit.FaultStorage;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Metadata through the log is crash-safe: the power is lost at every write and sync of a workload of allocating and
 * in-place writes with flushes between them (the session's header updates, each block's data, the log entry, the BAT
 * page, the header's log GUID set and cleared), and each time every file the testkit's {@link FaultStorage} says the
 * loss could leave — the writes since the last sync kept or lost, some torn into sectors — either opens read-only, or is refused read-only because its
 * log needs replaying; a writable open then replays it, and every byte flushed before reads as flushed (bytes
 * written since may read their flushed value or any value written to them since), the log GUID is clear, and the
 * image takes new writes.
 */
class VhdxPowerLossTest {
    static final long SIZE = 4L << 20;

    /** @param offset where @param data what */
    record Write(long offset, byte[] data) {
    }

    static Write[] workload(long seed) {
        Random r = new Random(seed);
        Write[] w = new Write[7];
        for (int i = 0; i < w.length; i++) {
            long off = r.nextLong(SIZE - 40_000);
            byte[] d = new byte[1 + r.nextInt(40_000)];
            r.nextBytes(d);
            w[i] = new Write(off, d);
        }
        return w;
    }

    static byte[] fresh() throws IOException {
        String name = "fresh-" + System.nanoTime();
        try (MemoryStorage s = MemoryStorage.create(name)) {
            VhdxCreate.create(s, VhdxCreate.plan(SIZE, 1 << 20, 1 << 20, false, true), () -> new UUID(3, 4), 7);
            byte[] b = new byte[(int) s.size()];
            s.read(ByteBuffer.wrap(b), 0);
            return b;
        } finally {
            MemoryStorage.delete(name);
        }
    }

    /** Files a power loss may leave at one point. */
    private static final int VARIANTS = 2;

    static Image open(Storage s, boolean writable) throws IOException {
        FormatInstance layer = new VhdxFormatDriver().open(s, OpenContext.of(writable));
        return LayeredImage.builder("vhdx", layer, s).writable(writable).build();
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1})
    void everyCrashPointLeavesTheFlushedData(long seed) throws IOException {
        byte[] initial = fresh();
        Write[] writes = workload(seed);
        int points = 0;
        int replays = 0;
        for (int failAfter = 0; ; failAfter++) {
            FaultStorage s = disk("crash-" + seed + "-" + failAfter, initial);
            s.crashAt(failAfter, VARIANTS);
            byte[] flushed = new byte[(int) SIZE];
            byte[] written = new byte[(int) SIZE];
            List<Write> since = new ArrayList<>();
            // the disk goes on after the crash point: the workload stops at the first step that passed it
            try (Image image = open(s, true)) {
                for (int i = 0; i < writes.length && !s.crashed().isPresent(); i++) {
                    // issued, so its bytes may read new from here on, even if the power is lost during it
                    since.add(writes[i]);
                    System.arraycopy(writes[i].data(), 0, written, (int) writes[i].offset(), writes[i].data().length);
                    image.write(ByteBuffer.wrap(writes[i].data()), writes[i].offset());
                    if (i % 3 == 2 && flush(image, s)) {
                        flushed = written.clone();
                        since.clear();
                    }
                }
                if (flush(image, s)) {
                    flushed = written.clone();
                    since.clear();
                }
            }
            if (s.crashFiles().isEmpty()) {
                assertTrue(points > 30, "the workload has crash points: " + points);
                System.out.println("VhdxPowerLossTest seed " + seed + ": " + points + " power-loss points, " + replays
                        + " crashed files replayed a log, 0 lost flushed bytes");
                assertTrue(replays > 0, "some crash points leave a log to replay");
                return;
            }
            points++;
            for (byte[] after : s.crashFiles()) {
                replays += checkRestart(after, flushed, since, failAfter) ? 1 : 0;
            }
        }
    }

    /** Flushes unless the crash point has passed; returns whether the flush returned before the crash. */
    private static boolean flush(Image image, FaultStorage s) throws IOException {
        if (s.crashed().isPresent()) {
            return false;
        }
        image.flush();
        return s.crashed().isEmpty();
    }

    private static FaultStorage disk(String name, byte[] content) {
        return FaultStorage.of(StorageLocation.memory(name), content);
    }

    /** Whether a write issued since the last flush put {@code value} at byte {@code at}. */
    private static boolean writtenSince(List<Write> since, long at, byte value) {
        for (Write w : since) {
            if (at >= w.offset() && at < w.offset() + w.data().length && w.data()[(int) (at - w.offset())] == value) {
                return true;
            }
        }
        return false;
    }

    /** The file a crash left; returns whether it had a log to replay. */
    private static boolean checkRestart(byte[] after, byte[] flushed, List<Write> since, int failAfter)
            throws IOException {
        boolean pending = false;
        try (Image image = open(disk("restart", after), false)) {
            assertEquals(SIZE, image.size());
        } catch (ReadOnlyImageException e) {
            assertTrue(e.getMessage().contains("log that needs to be replayed"), e::getMessage);
            pending = true;
        }
        FaultStorage again = disk("again", after);
        try (Image image = open(again, true)) {
            byte[] content = QemuReads.readAll(image);
            for (int i = 0; i < content.length; i++) {
                if (content[i] != flushed[i] && !writtenSince(since, i, content[i])) {
                    throw new AssertionError("crash after " + failAfter + " operations: byte " + i + " reads "
                            + content[i] + ", neither its flushed value " + flushed[i] + " nor one written since");
                }
            }
            image.write(ByteBuffer.wrap(new byte[] {42}), SIZE - 1);
            image.flush();
        }
        byte[] repaired = again.content();
        String name = "repaired-" + failAfter;
        try (MemoryStorage m = MemoryStorage.of(name, repaired)) {
            assertFalse(VhdxHeaders.read(m).current().hasLog(), "the log GUID is clear after the replay");
        } finally {
            MemoryStorage.delete(name);
        }
        try (Image image = open(disk("check", repaired), false)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            image.read(b, SIZE - 1);
            assertEquals(42, b.get(0));
        }
        return pending;
    }
}
