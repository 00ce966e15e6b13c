package imago.cli.text;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Locale;

/**
 * Sizes as QEMU reads and prints them: {@code qemu_strtosz} (suffixes, fractions, hex),
 * {@code size_to_str} (qemu-img's "64 MiB") and qemu-io's {@code cvtstr} ("1.500 KiB").
 */
public final class Sizes {
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);
    private static final BigInteger HALF_64 = BigInteger.ONE.shiftLeft(63);
    private static final BigInteger MAX_U64 = TWO_64.subtract(BigInteger.ONE);
    private static final String[] SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

    private Sizes() {
    }

    /** Why a size did not parse: qemu's {@code -EINVAL} (malformed) or {@code -ERANGE} (too large). */
    public enum Problem {
        /** Not a number, a negative number, or an unknown suffix. */
        MALFORMED,
        /** Larger than fits (in 64 bits, or in the caller's limit). */
        TOO_LARGE
    }

    /** A size that does not parse. */
    public static final class SizeException extends Exception {
        private static final long serialVersionUID = 1L;

        private final Problem problem;

        /**
         * @param problem why
         * @param text the text that did not parse
         */
        public SizeException(Problem problem, String text) {
            super((problem == Problem.MALFORMED ? "malformed size: " : "size too large: ") + text);
            this.problem = problem;
        }

        /** Why the size did not parse. */
        public Problem problem() {
            return problem;
        }
    }

    /**
     * Parses a size as {@code qemu_strtosz} does with bytes as the default unit: decimal digits with an
     * optional fraction ({@code 1.5G}), or hex ({@code 0x1000}, no fraction or suffix), and an optional
     * case-insensitive suffix {@code B K M G T P E} (binary multiples). A fraction needs a suffix other
     * than {@code B}. The result must fit in a signed 64-bit value.
     *
     * @throws SizeException if the text is malformed or the value does not fit
     */
    public static long parse(String text) throws SizeException {
        BigInteger value = parseUnsigned(text);
        if (value.bitLength() > 63) {
            throw new SizeException(Problem.TOO_LARGE, text);
        }
        return value.longValueExact();
    }

    /**
     * Parses a size as {@link #parse} does, up to 2^64 - 1: what QEMU's option parser takes for a size option.
     *
     * @throws SizeException if the text is malformed or the value does not fit in 64 bits
     */
    public static BigInteger parseUnsigned64(String text) throws SizeException {
        return parseUnsigned(text);
    }

    private static BigInteger parseUnsigned(String text) throws SizeException {
        int n = text.length();
        int i = 0;
        // strtoull skips leading white space and takes a sign; qemu then refuses any '-'
        while (i < n && isSpace(text.charAt(i))) {
            i++;
        }
        if (i < n && (text.charAt(i) == '+' || text.charAt(i) == '-')) {
            if (text.charAt(i) == '-') {
                throw new SizeException(Problem.MALFORMED, text);
            }
            i++;
        }
        int digitsStart = i;
        while (i < n && isDigit(text.charAt(i))) {
            i++;
        }
        if (i == digitsStart) {
            throw new SizeException(Problem.MALFORMED, text);
        }
        BigInteger val = new BigInteger(text.substring(digitsStart, i));
        if (val.compareTo(MAX_U64) > 0) {
            throw new SizeException(Problem.TOO_LARGE, text);
        }
        if (val.signum() == 0 && i < n && (text.charAt(i) == 'x' || text.charAt(i) == 'X')) {
            int hexStart = i + 1;
            int j = hexStart;
            while (j < n && Character.digit(text.charAt(j), 16) >= 0) {
                j++;
            }
            if (j == hexStart) {
                // strtoull parses just the "0"; what follows ("x") is then an unknown suffix
                throw new SizeException(Problem.MALFORMED, text);
            }
            BigInteger hex = new BigInteger(text.substring(hexStart, j), 16);
            if (hex.compareTo(MAX_U64) > 0) {
                throw new SizeException(Problem.TOO_LARGE, text);
            }
            if (j != n) {
                throw new SizeException(Problem.MALFORMED, text);
            }
            return hex;
        }
        BigInteger fraction = BigInteger.ZERO; // 64-bit fixed point, as qemu computes it
        if (i < n && text.charAt(i) == '.') {
            int f = i;
            int j = i + 1;
            while (j < n && isDigit(text.charAt(j))) {
                j++;
            }
            if (j < n && (text.charAt(j) == 'e' || text.charAt(j) == 'E')) {
                // strtod would read an exponent: qemu refuses the whole input
                int k = j + 1;
                if (k < n && (text.charAt(k) == '+' || text.charAt(k) == '-')) {
                    k++;
                }
                if (k < n && isDigit(text.charAt(k))) {
                    throw new SizeException(Problem.MALFORMED, text);
                }
            }
            if (j > f + 1) {
                double d = Double.parseDouble("0" + text.substring(f, j));
                fraction = new BigDecimal(d).multiply(new BigDecimal(TWO_64)).toBigInteger();
            }
            i = j;
        }
        long mul = 1;
        if (i < n) {
            mul = multiplier(text.charAt(i));
            if (mul < 0) {
                throw new SizeException(Problem.MALFORMED, text);
            }
            i++;
        }
        if (i != n) {
            throw new SizeException(Problem.MALFORMED, text);
        }
        if (mul == 1) {
            if (fraction.signum() != 0) {
                throw new SizeException(Problem.MALFORMED, text);
            }
            return val;
        }
        BigInteger m = BigInteger.valueOf(mul);
        BigInteger frac = fraction.multiply(m);
        BigInteger result = val.multiply(m).add(frac.shiftRight(64));
        if (frac.mod(TWO_64).compareTo(HALF_64) >= 0) {
            result = result.add(BigInteger.ONE); // round 0.5 upward
        }
        if (result.compareTo(MAX_U64) > 0) {
            throw new SizeException(Problem.TOO_LARGE, text);
        }
        return result;
    }

    private static long multiplier(char c) {
        return switch (Character.toUpperCase(c)) {
            case 'B' -> 1L;
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            case 'P' -> 1L << 50;
            case 'E' -> 1L << 60;
            default -> -1L;
        };
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x0b;
    }

    /**
     * qemu-img's {@code size_to_str}: three significant digits and a binary unit, switching to the next
     * unit from 1000 on ({@code 68 KiB}, {@code 1.5 GiB}, {@code 0 B}).
     */
    public static String human(long bytes) {
        double v = unsigned(bytes);
        int exp = v == 0 ? 0 : Math.getExponent(v / (1000.0 / 1024.0)) + 1; // frexp's exponent
        int i = (exp - 1) / 10; // C division truncates toward zero, like Java's
        double div = Math.scalb(1.0, i * 10);
        String number = bytes > 0 && bytes < 1L << 53 ? threeDigits(bytes, i * 10) : null;
        return (number != null ? number : formatG(v / div, 3)) + " " + SUFFIXES[i] + "B";
    }

    /**
     * {@link #formatG formatG(bytes / 2^shift, 3)} in integer arithmetic, or {@code null} where the rounding
     * reaches a fourth digit (formatG then decides, e.g. {@code 1e+03}). The quotient is exact in binary, so
     * {@code bytes * 10^decimals / 2^shift} rounded half to even is C's rounding of it. The reason: formatG's
     * {@code BigDecimal} arithmetic, on its first use in a process, sets up {@code BigInteger}'s fork/join
     * machinery and more (12-16 ms of CPU in a JVM of its own, at load ~20).
     */
    private static String threeDigits(long bytes, int shift) {
        double x = Math.scalb((double) bytes, -shift); // exact: bytes < 2^53
        int decimals = x < 1 ? 3 : x < 10 ? 2 : x < 100 ? 1 : 0;
        if (x >= 1000) {
            return null;
        }
        long scaled = bytes * (decimals == 3 ? 1000 : decimals == 2 ? 100 : decimals == 1 ? 10 : 1); // < 2^63
        long q = scaled >>> shift;
        if (shift > 0) {
            long rem = scaled - (q << shift);
            long half = 1L << (shift - 1);
            if (rem > half || rem == half && (q & 1) == 1) {
                q++;
            }
        }
        if (q >= 1000) {
            return null; // rounded up to a fourth digit
        }
        String digits = Long.toString(q);
        if (decimals == 0) {
            return digits;
        }
        String padded = "0".repeat(Math.max(0, decimals + 1 - digits.length())) + digits;
        int point = padded.length() - decimals;
        return stripZeros(padded.substring(0, point) + "." + padded.substring(point));
    }

    /**
     * qemu-io's {@code cvtstr}: {@code %.3f} of the largest unit not above the value, with a
     * trailing {@code .000} dropped ({@code 64 KiB}, {@code 1.500 KiB}, {@code 40 bytes}).
     */
    public static String ioUnits(double value) {
        String[] units = {" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"};
        for (int k = 0; k < units.length; k++) {
            double unit = Math.scalb(1.0, 60 - 10 * k);
            if (value >= unit) {
                return trimZeros(printf(value / unit, 3), units[k]);
            }
        }
        return trimZeros(printf(value, 6), " bytes");
    }

    /**
     * C's {@code %.Nf}: the exact binary value rounded to {@code digits} decimals, an exact tie to even (glibc
     * prints 1.0625 as {@code 1.062}, where Java's {@code %.3f} rounds it up).
     */
    private static String printf(double value, int digits) {
        if (!Double.isFinite(value)) {
            return String.format(Locale.ROOT, "%." + digits + "f", value);
        }
        return new java.math.BigDecimal(value).setScale(digits, java.math.RoundingMode.HALF_EVEN).toPlainString();
    }

    private static String trimZeros(String number, String suffix) {
        int dot = number.indexOf(".000");
        return (dot >= 0 ? number.substring(0, dot) : number) + suffix;
    }

    private static double unsigned(long v) {
        return v >= 0 ? (double) v : (double) (v >>> 1) * 2.0 + (v & 1);
    }

    /**
     * C's {@code %.<precision>g}: {@code precision} significant digits, trailing zeros removed,
     * exponent notation when the exponent is below -4 or at least the precision.
     */
    public static String formatG(double value, int precision) {
        if (value == 0) {
            return "0";
        }
        if (Double.isNaN(value) || Double.isInfinite(value)) {
            return Double.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
        }
        BigDecimal rounded = new BigDecimal(value).round(new MathContext(precision, RoundingMode.HALF_EVEN));
        int exponent = rounded.precision() - rounded.scale() - 1;
        if (exponent < -4 || exponent >= precision) {
            BigDecimal mantissa = rounded.movePointLeft(exponent);
            String m = stripZeros(mantissa.toPlainString());
            return m + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
        }
        return stripZeros(rounded.toPlainString());
    }

    private static String stripZeros(String s) {
        if (s.indexOf('.') < 0) {
            return s;
        }
        int end = s.length();
        while (s.charAt(end - 1) == '0') {
            end--;
        }
        if (s.charAt(end - 1) == '.') {
            end--;
        }
        return s.substring(0, end);
    }
}
