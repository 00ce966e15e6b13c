package imago.qcow2.internal;

import imago.api.CorruptImageException;

/**
 * Overflow-checked arithmetic on values read from an image: a result that does not fit a
 * non-negative {@code long} is a damaged or hostile header, reported as a
 * {@link CorruptImageException} naming the file and the offset of the field, never a negative
 * length or a wrapped offset.
 */
final class Qcow2Checks {
    /** Host offsets must stay below 2^56 (the L1/L2 offset fields are 47 bits above bit 9). */
    static final long MAX_HOST_OFFSET = 1L << 56;

    private Qcow2Checks() {
    }

    /** {@code a + b}, both non-negative. */
    static long add(String resource, long at, long a, long b, String what) throws CorruptImageException {
        if (a < 0 || b < 0) {
            throw new CorruptImageException(resource, at, what + " is negative");
        }
        long r = a + b;
        if (r < 0) {
            throw new CorruptImageException(resource, at, what + " overflows");
        }
        return r;
    }

    /** {@code a * b}, both non-negative. */
    static long mul(String resource, long at, long a, long b, String what) throws CorruptImageException {
        if (a < 0 || b < 0) {
            throw new CorruptImageException(resource, at, what + " is negative");
        }
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new CorruptImageException(resource, at, what + " overflows");
        }
    }

    /** {@code ceil(a / b)} for {@code a >= 0, b > 0}, without overflow. */
    static long divCeil(long a, long b) {
        return a == 0 ? 0 : (a - 1) / b + 1;
    }

    /** Whether {@code value} is a multiple of {@code alignment} (a power of two). */
    static boolean aligned(long value, long alignment) {
        return (value & (alignment - 1)) == 0;
    }

    /** An unsigned 32-bit field as a {@code long}. */
    static long u32(int v) {
        return Integer.toUnsignedLong(v);
    }
}
