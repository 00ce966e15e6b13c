package imago.testkit;

import imago.api.Image;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The loop of a format's own power-loss test, for checks on the format's own structures (a log to replay, a footer
 * to restore) beside the conformance kit's crash runs: a seeded workload of random writes, with a flush after every
 * third and one at the end, runs on a fresh image over a {@link FaultStorage} once for each point where the power
 * can fail (every write and sync; the workload stops at the first step past the point), until a run passes them
 * all; every file each loss could leave goes to the test's check, with what the guest was owed.
 */
public final class PowerLossRuns {
    private PowerLossRuns() {
    }

    /**
     * One write of a workload.
     *
     * @param offset where it writes
     * @param data what it writes
     */
    public record Write(long offset, byte[] data) {
    }

    /** How a test opens its format's image over a disk. */
    @FunctionalInterface
    public interface Opener {
        /**
         * Opens the image on {@code disk}.
         *
         * @throws IOException if it cannot be opened
         */
        Image open(Storage disk, boolean writable) throws IOException;
    }

    /** What a test checks of each file a power loss left. */
    @FunctionalInterface
    public interface Check {
        /**
         * Checks {@code crash}.
         *
         * @throws IOException if the file cannot be read
         */
        void check(Crash crash) throws IOException;
    }

    /**
     * A file a power loss left, with what the guest was owed.
     *
     * @param point the crash point: the writes and syncs of the run before the power failed
     * @param file the file's bytes
     * @param flushed the guest content when the last flush that returned before the loss returned
     * @param written the guest content with every write issued before the loss
     * @param since the writes issued after that flush, in order (each may have reached the disk in part)
     */
    public record Crash(int point, byte[] file, byte[] flushed, byte[] written, List<Write> since) {
        /** A disk (in memory, named {@code name}) holding a copy of the file. */
        public FaultStorage disk(String name) {
            return FaultStorage.of(StorageLocation.memory(name), file);
        }

        /** Asserts that each byte of {@code content} reads as flushed or as last written before the loss. */
        public void assertFlushedOrLastWritten(byte[] content) {
            for (int i = 0; i < content.length; i++) {
                if (content[i] != flushed[i] && content[i] != written[i]) {
                    throw new AssertionError("crash after " + point + " operations: byte " + i + " reads "
                            + content[i] + ", neither its flushed value " + flushed[i] + " nor its last " + written[i]);
                }
            }
        }

        /**
         * Asserts that each byte of {@code content} reads as flushed or as one of the writes since put it (for a
         * format that may apply the writes since a flush out of order).
         */
        public void assertFlushedOrWrittenSince(byte[] content) {
            for (int i = 0; i < content.length; i++) {
                if (content[i] != flushed[i] && !writtenSince(i, content[i])) {
                    throw new AssertionError("crash after " + point + " operations: byte " + i + " reads "
                            + content[i] + ", neither its flushed value " + flushed[i] + " nor one written since");
                }
            }
        }

        /** Whether a write issued since the last flush put {@code value} at byte {@code at}. */
        private boolean writtenSince(long at, byte value) {
            for (Write w : since) {
                if (at >= w.offset() && at < w.offset() + w.data().length
                        && w.data()[(int) (at - w.offset())] == value) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * {@code count} seeded writes into an image of {@code size} bytes, each at a random offset below
     * {@code size - maxLength}, of 1 to {@code maxLength} random bytes.
     */
    public static List<Write> workload(long seed, long size, int count, int maxLength) {
        Random r = new Random(seed);
        List<Write> writes = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long offset = r.nextLong(size - maxLength);
            byte[] data = new byte[1 + r.nextInt(maxLength)];
            r.nextBytes(data);
            writes.add(new Write(offset, data));
        }
        return writes;
    }

    /**
     * Runs {@code writes} on an image of {@code size} bytes whose file holds {@code initial}, losing power at each
     * point in turn and leaving {@code variants} files each time, each handed to {@code check}.
     *
     * @return how many crash points the workload has
     */
    public static int run(byte[] initial, long size, List<Write> writes, int variants, Opener opener, Check check)
            throws IOException {
        for (int point = 0; ; point++) {
            FaultStorage disk = FaultStorage.of(StorageLocation.memory("power-loss-" + point), initial);
            disk.crashAt(point, variants);
            byte[] flushed = new byte[Math.toIntExact(size)];
            byte[] written = new byte[Math.toIntExact(size)];
            List<Write> since = new ArrayList<>();
            try (Image image = opener.open(disk, true)) {
                for (int i = 0; i < writes.size() && disk.crashed().isEmpty(); i++) {
                    // issued, so its bytes may read new from here on, even if the power is lost during it
                    Write w = writes.get(i);
                    since.add(w);
                    System.arraycopy(w.data(), 0, written, (int) w.offset(), w.data().length);
                    image.write(ByteBuffer.wrap(w.data()), w.offset());
                    if (i % 3 == 2 && flush(image, disk)) {
                        flushed = written.clone();
                        since.clear();
                    }
                }
                if (flush(image, disk)) {
                    flushed = written.clone();
                    since.clear();
                }
            }
            if (disk.crashFiles().isEmpty()) {
                return point;
            }
            for (byte[] file : disk.crashFiles()) {
                check.check(new Crash(point, file, flushed, written, List.copyOf(since)));
            }
        }
    }

    /** Flushes unless the crash point has passed; returns whether the flush returned before the crash. */
    private static boolean flush(Image image, FaultStorage disk) throws IOException {
        if (disk.crashed().isPresent()) {
            return false;
        }
        image.flush();
        return disk.crashed().isEmpty();
    }
}
