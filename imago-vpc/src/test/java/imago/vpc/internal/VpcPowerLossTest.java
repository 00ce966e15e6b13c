package imago.vpc.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.Image;
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
 * The allocation order is crash-safe: the power is lost at every write or sync of a workload of allocating, partial
 * and in-place writes with flushes between them, and each time every file the testkit's {@link FaultStorage} says
 * the loss could leave (the writes made since the last sync kept or lost, some torn into sectors) opens, reads every
 * byte flushed before as flushed (bytes written since may read old or new), and a writable open leaves it ending in
 * a footer again.
 */
class VpcPowerLossTest {
    static final long SIZE = 10L << 20;

    static byte[] fresh() throws IOException {
        try (MemoryStorage s = MemoryStorage.create("fresh-" + System.nanoTime())) {
            VpcCreate.create(s, VpcCreate.plan(SIZE, true), false, 1, new UUID(3, 4));
            byte[] b = new byte[(int) s.size()];
            s.read(ByteBuffer.wrap(b), 0);
            MemoryStorage.delete(s.name());
            return b;
        }
    }

    /** Files a power loss may leave at one point. */
    private static final int VARIANTS = 3;

    static Image open(Storage s, boolean writable) throws IOException {
        FormatInstance layer = new VpcFormatDriver().open(s, OpenContext.of(writable));
        return LayeredImage.builder("vpc", layer, s).writable(writable).build();
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void everyCrashPointLeavesTheFlushedData(long seed) throws IOException {
        int points = PowerLossRuns.run(fresh(), SIZE, PowerLossRuns.workload(seed, SIZE, 12, 70_000), VARIANTS,
                VpcPowerLossTest::open, VpcPowerLossTest::checkRestart);
        assertTrue(points > 10, "the workload has crash points");
    }

    /** The file a crash left: it opens, reads the flushed bytes, and a writable open repairs and writes it. */
    private static void checkRestart(PowerLossRuns.Crash crash) throws IOException {
        try (Image image = open(crash.disk("restart"), false)) {
            assertEquals(SIZE, image.size());
            crash.assertFlushedOrLastWritten(QemuReads.readAll(image));
        }
        FaultStorage again = crash.disk("again");
        try (Image image = open(again, true)) {
            image.write(ByteBuffer.wrap(new byte[] {42}), SIZE - 1);
            image.flush();
        }
        byte[] repaired = again.content();
        assertEquals(VpcFields.FOOTER_COOKIE, ByteBuffer.wrap(repaired).getLong(repaired.length - 512),
                "a writable open leaves the file ending in a footer");
        try (Image image = open(FaultStorage.of(StorageLocation.memory("check"), repaired), false)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            image.read(b, SIZE - 1);
            assertEquals(42, b.get(0));
        }
    }
}
