package imago.cli.convert;

import java.io.InterruptedIOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Limits how many bytes per second are written ({@code qemu-img convert -r}, {@code commit -r}): each write first
 * reserves its bytes and, when the reservations run ahead of the rate, waits until the clock catches up. A tenth of
 * a second's worth goes out at once, as QEMU's throttling lets such a burst through.
 */
public final class Throttle {
    private final long bytesPerSecond;
    private final long start = System.nanoTime();
    private final ReentrantLock lock = new ReentrantLock();
    /** Bytes reserved so far (guarded by {@link #lock}). */
    private long reserved;

    /** @param bytesPerSecond the rate, at least 1 */
    public Throttle(long bytesPerSecond) {
        if (bytesPerSecond < 1) {
            throw new IllegalArgumentException("rate must be positive: " + bytesPerSecond);
        }
        this.bytesPerSecond = bytesPerSecond;
    }

    /**
     * Reserves {@code bytes} and waits until writing them keeps to the rate.
     *
     * @throws InterruptedIOException if interrupted while waiting
     */
    public void acquire(long bytes) throws InterruptedIOException {
        long due;
        lock.lock();
        try {
            reserved += bytes;
            // the time at which everything reserved before this write, less the burst, is due
            double seconds = (double) (reserved - bytes) / bytesPerSecond - 0.1;
            due = start + (long) (seconds * TimeUnit.SECONDS.toNanos(1));
        } finally {
            lock.unlock();
        }
        long wait = due - System.nanoTime();
        if (wait > 0) {
            try {
                TimeUnit.NANOSECONDS.sleep(wait);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while rate limited");
            }
        }
    }
}
