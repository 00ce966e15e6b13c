package imago.testkit;

import imago.api.Image;
import imago.api.StorageLocation;
import imago.api.spi.Storage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The loop of a format's own power-loss test, for checks on the format's own structures (a log to replay, a footer
 * to restore, a clean {@code qemu-img check}) beside the conformance kit's crash runs.
 *
 * <p>{@link #sweep} is the loop itself: a test's workload runs once to count its points (every write and sync of a
 * {@link FaultStorage}), then on a fresh disk once for each point of a {@link Schedule} (all of them, or a sample),
 * losing power there; every file each loss could leave goes to the test's check, with what the guest was owed then.
 * {@link #run} is that loop over a ready-made workload: seeded random writes, with a flush after every third and one
 * at the end, at every point.
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
        return sweep(Schedule.EVERY_POINT, point -> {
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
            return new Run<>(disk, new Guest(flushed, written, List.copyOf(since)));
        }, (point, file, owed) -> check.check(new Crash(point, file, owed.flushed(), owed.written(), owed.since())))
                .points();
    }

    /** What {@link #run}'s guest was owed: see {@link Crash}. */
    private record Guest(byte[] flushed, byte[] written, List<Write> since) {
    }

    /** The points a {@link #sweep} loses power at, in turn. */
    @FunctionalInterface
    public interface Schedule {
        /** Every point. */
        Schedule EVERY_POINT = point -> point + 1;

        /**
         * The point after {@code point}: the first after -1 (the counting run); past the workload's last point, the
         * sweep ends.
         */
        int next(int point);
    }

    /** One run of a test's workload. */
    @FunctionalInterface
    public interface Trial<O> {
        /**
         * Runs the workload on a fresh disk set to lose power at {@code point} (-1: never, the run only counts
         * points). Nothing it does past that point changes what is checked (the files were left, and what the guest
         * is owed is what it was owed then), so it may stop after the step the power went out in.
         *
         * @return the disk, with what the guest was owed when the power went out (or at the end)
         * @throws IOException if the workload fails
         */
        Run<O> run(int point) throws IOException;
    }

    /**
     * A run of a workload.
     *
     * @param disk the disk it ran on
     * @param owed what the guest was owed when the power went out, in the test's own terms
     * @param <O> the type of {@code owed}
     */
    public record Run<O>(FaultStorage disk, O owed) {
    }

    /** What a test checks of each file a power loss left. */
    @FunctionalInterface
    public interface FileCheck<O> {
        /**
         * Checks {@code file}, left by a power loss at {@code point}.
         *
         * @throws IOException if the file cannot be read
         */
        void check(int point, byte[] file, O owed) throws IOException;
    }

    /**
     * What a {@link #sweep} did.
     *
     * @param runs the runs of the workload, the counting one included
     * @param points the points of the workload (writes and syncs)
     * @param crashPoints the points the power was lost at
     * @param crashFiles the files those losses left, all checked
     */
    public record Sweep(int runs, int points, int crashPoints, int crashFiles) {
    }

    /**
     * Runs {@code trial} to count the workload's points, then once for each point of {@code schedule} below that
     * count, handing every file each power loss left to {@code check}.
     */
    public static <O> Sweep sweep(Schedule schedule, Trial<O> trial, FileCheck<O> check) throws IOException {
        int points = Integer.MAX_VALUE;
        int runs = 0;
        int crashPoints = 0;
        int crashFiles = 0;
        for (int point = -1; point < points; point = schedule.next(point)) {
            runs++;
            Run<O> run = trial.run(point);
            List<byte[]> files = run.disk().crashFiles();
            if (files.isEmpty()) {
                points = run.disk().points();
                continue;
            }
            crashPoints++;
            crashFiles += files.size();
            for (byte[] file : files) {
                check.check(point, file, run.owed());
            }
        }
        return new Sweep(runs, points, crashPoints, crashFiles);
    }

    /**
     * What the guest is owed of one area of an image (its disk, a VM state area) as a workload runs, for a format
     * that may leave any byte changed since the last flush old, new or in between: the area's content when the last
     * flush that returned before the power loss returned, and which bytes changed since.
     */
    public static final class Owed {
        private final byte[] now;
        private byte[] flushed;
        private boolean[] changed;

        /** An area holding {@code initial}, flushed. */
        public Owed(byte[] initial) {
            now = initial.clone();
            flushed = initial.clone();
            changed = new boolean[initial.length];
        }

        /** The workload changed the area at {@code offset} to {@code data}. */
        public void changed(int offset, byte[] data) {
            System.arraycopy(data, 0, now, offset, data.length);
            Arrays.fill(changed, offset, offset + data.length, true);
        }

        /** A flush returned: all that changed is owed now. */
        public void flushed() {
            flushed = now.clone();
            changed = new boolean[now.length];
        }

        /**
         * Asserts that each byte of {@code content} (the area read back) that did not change since the last flush
         * reads as flushed.
         */
        public void assertKept(String what, byte[] content) {
            assertKept(what, content, flushed, changed);
        }

        /**
         * Asserts that each byte of {@code content} that is not {@code changed} since the last flush reads as
         * {@code flushed}.
         */
        public static void assertKept(String what, byte[] content, byte[] flushed, boolean[] changed) {
            for (int i = 0; i < flushed.length; i++) {
                if (!changed[i] && content[i] != flushed[i]) {
                    throw new AssertionError(what + ": byte " + i + " was flushed as " + flushed[i] + " but reads "
                            + content[i]);
                }
            }
        }
    }

    /** Flushes unless the crash point has passed; returns whether the flush returned before the crash. */
    public static boolean flush(Image image, FaultStorage disk) throws IOException {
        if (disk.crashed().isPresent()) {
            return false;
        }
        image.flush();
        return disk.crashed().isEmpty();
    }
}
