package imago.cli.convert;

import java.util.function.Consumer;

/**
 * How a {@link Converter} copies one source into its target: qemu-img convert's options as they reach the copy.
 *
 * @param minSparse zero blocks of this size (a multiple of 512, at most {@link Converter#CHUNK}) are not written as
 *     data; 0 writes everything, zeroes included, so that the target is fully allocated ({@code -S})
 * @param threads how many chunks are copied at once (at least 1; {@code -m})
 * @param inOrder whether chunks are written in guest order (qemu-img's default; {@code -W} writes them as read)
 * @param targetZeroed whether the target reads as zeroes where nothing is written (a new image without a backing
 *     file, {@code --target-is-zero}); if not, ranges that read as zero in the source are written as zeroes
 * @param backingRuns what the source's top layer leaves to its backing file, which is left to the target's
 *     ({@code -B}, or a new image with {@code -o backing_file}, from a source that has a backing file), or
 *     {@code null} to copy everything
 * @param targetBackingSize the size of the target's backing file, beyond which zeroes need not be written, or -1
 * @param copyOffload whether data is copied as it is, without looking for zero blocks in it ({@code -C})
 * @param throttle limits the bytes written per second ({@code -r}), or {@code null}
 * @param salvage told of each 512-byte sector that cannot be read, which is then copied as zeroes
 *     ({@code --salvage}), or {@code null} to fail on the first read error
 */
public record CopyOptions(int minSparse, int threads, boolean inOrder, boolean targetZeroed,
        BackingRuns backingRuns, long targetBackingSize, boolean copyOffload, Throttle throttle,
        Consumer<String> salvage) {

    /** Checks the values. */
    public CopyOptions {
        if (minSparse < 0 || minSparse > Converter.CHUNK || minSparse % 512 != 0) {
            throw new IllegalArgumentException("bad sparse block size " + minSparse);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("need at least one thread");
        }
    }

    /** A copy into a new, zeroed target without a backing file, at offset 0, in order. */
    public static CopyOptions of(int minSparse, int threads) {
        return new CopyOptions(minSparse, threads, true, true, null, -1, false, null, null);
    }

    /** These options with chunks written in order or as they are read. */
    public CopyOptions inOrder(boolean on) {
        return new CopyOptions(minSparse, threads, on, targetZeroed, backingRuns, targetBackingSize, copyOffload,
                throttle, salvage);
    }
}
