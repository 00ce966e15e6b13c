package imago.cli.convert;

import java.nio.ByteBuffer;

/**
 * Finds the blocks of a {@link Converter}'s chunk that read as zero ({@code -S}): the runs of whole blocks that are
 * all zero, and of those that are not, blocks aligned to guest offsets.
 *
 * <p>A cold JVM runs the scan interpreted at first, and compiles a method only after it is called a few hundred times
 * (or loops tens of thousands of times): so the loop over the blocks is cut into calls of {@link #STEP} bytes, which
 * the JIT compiles within the first chunks, and what stays interpreted runs a few dozen times per chunk rather than
 * once per block (a 2 MiB chunk of data: 32 calls instead of 512 rounds of an interpreted loop).
 */
final class ZeroBlocks {
    /** Bytes looked at per call at most (but one whole block): 16 blocks of qemu-img's default 4 KiB. */
    static final int STEP = 64 << 10;

    /** Told of each run in turn, in order, each run ending where the next starts. */
    @FunctionalInterface
    interface Runs {
        void run(int from, int to, boolean zero);
    }

    private ZeroBlocks() {
    }

    /**
     * Reports the runs of {@code buffer}'s bytes {@code [0, length)}, which hold the guest bytes from {@code offset}:
     * runs of blocks of {@code block} bytes at guest offsets that are multiples of {@code block} (the first and last
     * may be partial), each run either all blocks that read as zero or all blocks that do not.
     */
    static void scan(ByteBuffer buffer, int length, long offset, int block, Runs runs) {
        if (length <= 0) {
            return;
        }
        int first = Math.min(length, block - Math.floorMod(offset, block));
        boolean zero = isZero(buffer, 0, first);
        int runStart = 0;
        for (int at = first; at < length; ) {
            int end = runEnd(buffer, at, length, block, zero);
            if (end == at) { // the block at {@code at} is the other kind: a new run starts there
                runs.run(runStart, at, zero);
                runStart = at;
                zero = !zero;
            }
            at = end;
        }
        runs.run(runStart, length, zero);
    }

    /**
     * Where the run of blocks from {@code from} (a block boundary) that all read as zero, or if not {@code zero} that
     * all do not, ends: {@code from} if the first block differs; looks at {@link #STEP} bytes at most.
     */
    static int runEnd(ByteBuffer buffer, int from, int to, int block, boolean zero) {
        int limit = Math.min(to, from + STEP);
        int at = from;
        while (at < limit) {
            int end = Math.min(to, at + block);
            if (isZero(buffer, at, end) != zero) {
                break;
            }
            at = end;
        }
        return at;
    }

    /** Whether the bytes {@code [from, to)} of {@code buffer} (at most {@link Converter#CHUNK}) are all zero. */
    static boolean isZero(ByteBuffer buffer, int from, int to) {
        if (to - from >= Long.BYTES && buffer.getLong(from) != 0) { // data mostly shows in the first bytes
            return false;
        }
        return buffer.slice(from, to - from).mismatch(zeroes(to - from)) < 0;
    }

    /** {@code n} zero bytes (at most {@link Converter#CHUNK}), read-only. */
    static ByteBuffer zeroes(int n) {
        return Zeroes.BUFFER.slice(0, n);
    }

    /** Made on first use: most copies never compare a block whole, nor write zeroes as data. */
    private static final class Zeroes {
        static final ByteBuffer BUFFER = ByteBuffer.allocateDirect(Converter.CHUNK).asReadOnlyBuffer();
    }
}
