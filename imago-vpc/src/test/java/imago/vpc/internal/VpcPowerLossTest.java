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
import imago.testkit.QemuReads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
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

    record Write(long offset, byte[] data) {
    }

    static Write[] workload(long seed) {
        Random r = new Random(seed);
        Write[] w = new Write[12];
        for (int i = 0; i < w.length; i++) {
            long off = r.nextLong(SIZE - 70_000);
            byte[] d = new byte[1 + r.nextInt(70_000)];
            r.nextBytes(d);
            w[i] = new Write(off, d);
        }
        return w;
    }

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
        byte[] initial = fresh();
        Write[] writes = workload(seed);
        int points = 0;
        for (int failAfter = 0; ; failAfter++) {
            FaultStorage s = disk("crash-" + seed + "-" + failAfter, initial);
            s.crashAt(failAfter, VARIANTS);
            byte[] flushed = new byte[(int) SIZE];
            byte[] written = new byte[(int) SIZE];
            // the disk goes on after the crash point: the workload stops at the first step that passed it
            try (Image image = open(s, true)) {
                for (int i = 0; i < writes.length && !s.crashed().isPresent(); i++) {
                    // issued, so its bytes may read new from here on, even if the power is lost during it
                    System.arraycopy(writes[i].data(), 0, written, (int) writes[i].offset(), writes[i].data().length);
                    image.write(ByteBuffer.wrap(writes[i].data()), writes[i].offset());
                    if (i % 3 == 2) {
                        flushed = flush(image, s, flushed, written);
                    }
                }
                flushed = flush(image, s, flushed, written);
            }
            if (s.crashFiles().isEmpty()) {
                assertTrue(points > 10, "the workload has crash points");
                return;
            }
            points++;
            for (byte[] after : s.crashFiles()) {
                checkRestart(after, flushed, written, failAfter);
            }
        }
    }

    /** Flushes unless the crash point has passed; returns what is flushed once it returns before the crash. */
    private static byte[] flush(Image image, FaultStorage s, byte[] flushed, byte[] written) throws IOException {
        if (s.crashed().isPresent()) {
            return flushed;
        }
        image.flush();
        return s.crashed().isPresent() ? flushed : written.clone();
    }

    private static FaultStorage disk(String name, byte[] content) {
        return FaultStorage.of(StorageLocation.memory(name), content);
    }

    /** The file a crash left: it opens, reads the flushed bytes, and a writable open repairs and writes it. */
    private static void checkRestart(byte[] after, byte[] flushed, byte[] written, int failAfter) throws IOException {
        try (Image image = open(disk("restart", after), false)) {
            assertEquals(SIZE, image.size());
            byte[] content = QemuReads.readAll(image);
            for (int i = 0; i < content.length; i++) {
                if (content[i] != flushed[i] && content[i] != written[i]) {
                    throw new AssertionError("crash after " + failAfter + " operations: byte " + i + " reads "
                            + content[i] + ", neither its flushed value " + flushed[i] + " nor its last " + written[i]);
                }
            }
        }
        FaultStorage again = disk("again", after);
        try (Image image = open(again, true)) {
            image.write(ByteBuffer.wrap(new byte[] {42}), SIZE - 1);
            image.flush();
        }
        byte[] repaired = again.content();
        assertEquals(VpcFields.FOOTER_COOKIE, ByteBuffer.wrap(repaired).getLong(repaired.length - 512),
                "a writable open leaves the file ending in a footer");
        try (Image image = open(disk("check", repaired), false)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            image.read(b, SIZE - 1);
            assertEquals(42, b.get(0));
        }
    }
}
