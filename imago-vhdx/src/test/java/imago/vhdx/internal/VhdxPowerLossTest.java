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
import imago.testkit.PowerLossRuns;
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
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

    /** Crashed files that had a log to replay. */
    private int replays;

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1})
    void everyCrashPointLeavesTheFlushedData(long seed) throws IOException {
        int points = PowerLossRuns.run(fresh(), SIZE, PowerLossRuns.workload(seed, SIZE, 7, 40_000), VARIANTS,
                VhdxPowerLossTest::open, this::checkRestart);
        assertTrue(points > 30, "the workload has crash points: " + points);
        System.out.println("VhdxPowerLossTest seed " + seed + ": " + points + " power-loss points, " + replays
                + " crashed files replayed a log, 0 lost flushed bytes");
        assertTrue(replays > 0, "some crash points leave a log to replay");
    }

    /** The file a crash left: it opens read-only or asks for its log's replay, which a writable open makes. */
    private void checkRestart(PowerLossRuns.Crash crash) throws IOException {
        try (Image image = open(crash.disk("restart"), false)) {
            assertEquals(SIZE, image.size());
        } catch (ReadOnlyImageException e) {
            assertTrue(e.getMessage().contains("log that needs to be replayed"), e::getMessage);
            replays++;
        }
        FaultStorage again = crash.disk("again");
        try (Image image = open(again, true)) {
            crash.assertFlushedOrWrittenSince(QemuReads.readAll(image));
            image.write(ByteBuffer.wrap(new byte[] {42}), SIZE - 1);
            image.flush();
        }
        byte[] repaired = again.content();
        String name = "repaired-" + crash.point();
        try (MemoryStorage m = MemoryStorage.of(name, repaired)) {
            assertFalse(VhdxHeaders.read(m).current().hasLog(), "the log GUID is clear after the replay");
        } finally {
            MemoryStorage.delete(name);
        }
        try (Image image = open(FaultStorage.of(StorageLocation.memory("check"), repaired), false)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            image.read(b, SIZE - 1);
            assertEquals(42, b.get(0));
        }
    }
}
