package imago.cow.internal;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The in-memory allocation bitmap: bit {@code n} (sector {@code n} is in this file) is bit
 * {@code n % 8} of byte {@code n / 8}, so byte {@code i} of the on-disk bitmap is byte {@code i % 8} of
 * the little-endian 64-bit word {@code i / 8} here, and runs are found a word at a time with
 * {@link Long#numberOfTrailingZeros}.
 *
 * <p>Bits are only ever set, atomically and with release semantics (after the data they announce is
 * written); readers use acquire reads, so a reader that sees a bit also sees the data.
 */
final class CowBitmap {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long[] words;
    private final long bits;

    /** A bitmap of {@code bits} bits, all clear; {@code bits} fits in {@code words.length * 64}. */
    CowBitmap(long bits) {
        this.bits = bits;
        this.words = new long[Math.toIntExact(CowFields.ceilDiv(bits, 64))];
    }

    /** The number of sectors that have a bit. */
    long bits() {
        return bits;
    }

    /** The backing array, for loading; only used before the bitmap is shared. */
    long[] words() {
        return words;
    }

    /** Whether sector {@code n < bits()} is present. */
    boolean get(long n) {
        long w = (long) WORDS.getAcquire(words, (int) (n >>> 6));
        return (w & (1L << n)) != 0;
    }

    /**
     * The first sector in {@code [from, limit)} whose bit is not {@code value}, or {@code limit};
     * {@code limit <= bits()}.
     */
    long nextDiffering(long from, long limit, boolean value) {
        long i = from;
        while (i < limit) {
            int w = (int) (i >>> 6);
            long word = (long) WORDS.getAcquire(words, w);
            if (value) {
                word = ~word;
            }
            word &= -1L << i; // shift counts are taken mod 64: drops the bits below i in its word
            if (word != 0) {
                return Math.min(limit, ((long) w << 6) + Long.numberOfTrailingZeros(word));
            }
            i = ((long) w + 1) << 6;
        }
        return limit;
    }

    /** Whether every sector in {@code [from, to)} is present. */
    boolean allSet(long from, long to) {
        return nextDiffering(from, to, true) == to;
    }

    /** Marks sectors {@code [from, to)} present ({@code to <= bits()}). */
    void set(long from, long to) {
        long i = from;
        while (i < to) {
            int w = (int) (i >>> 6);
            long wordEnd = Math.min(to, ((long) w + 1) << 6);
            int n = (int) (wordEnd - i);
            long mask = (n == 64 ? -1L : ((1L << n) - 1)) << i;
            WORDS.getAndBitwiseOrRelease(words, w, mask);
            i = wordEnd;
        }
    }

    /** Byte {@code i} of the on-disk form. */
    byte byteAt(long i) {
        long w = (long) WORDS.getAcquire(words, (int) (i >>> 3));
        return (byte) (w >>> ((i & 7) * 8));
    }

    /** Copies on-disk bytes {@code [from, from + dst.length)} into {@code dst}. */
    void copyBytes(long from, byte[] dst) {
        for (int k = 0; k < dst.length; k++) {
            dst[k] = byteAt(from + k);
        }
    }

    /** How many sectors are present. */
    long count() {
        long n = 0;
        for (int w = 0; w < words.length; w++) {
            n += Long.bitCount((long) WORDS.getAcquire(words, w));
        }
        return n;
    }
}
