package imago.cli.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class SizesTest {

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource({
        "0, 0", "100, 100", "1b, 1", "1B, 1", "1k, 1024", "1K, 1024", "64k, 65536", "1M, 1048576",
        "64M, 67108864", "1m, 1048576", "1G, 1073741824", "1.5G, 1610612736", "1.5k, 1536",
        // qemu rounds the fixed-point product half up: 1.1 KiB is 1126.4 bytes
        "1.1k, 1126", "1T, 1099511627776", "1P, 1125899906842624", "7E, 8070450532247928832",
        "0x100, 256", "0X10, 16", "0x0, 0", "1.k, 1024", "+5, 5", "' 12', 12", "1., 1",
        "9223372036854775807, 9223372036854775807"
    })
    void parsesLikeQemu(String text, long expected) throws Sizes.SizeException {
        assertEquals(expected, Sizes.parse(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "x", "12x", "-1", "- 1", "1e3", "1.5e3k", "1.5", "1.5b", "0x", "0x10k",
        "0x1.5", "1kb", "k", "1 k", "1.5.5k", "0xg"})
    void rejectsMalformed(String text) {
        var e = assertThrows(Sizes.SizeException.class, () -> Sizes.parse(text));
        assertEquals(Sizes.Problem.MALFORMED, e.problem());
    }

    @ParameterizedTest
    @ValueSource(strings = {"8E", "16E", "9223372036854775808", "18446744073709551616", "99999999999999999999",
        "0x8000000000000000", "0x10000000000000000", "8192P"})
    void rejectsTooLarge(String text) {
        var e = assertThrows(Sizes.SizeException.class, () -> Sizes.parse(text));
        assertEquals(Sizes.Problem.TOO_LARGE, e.problem());
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
        "0, 0 B", "1, 1 B", "999, 999 B", "1000, 0.977 KiB", "1023, 0.999 KiB", "1024, 1 KiB", "69632, 68 KiB",
        "200704, 196 KiB", "65536, 64 KiB", "67108864, 64 MiB", "1610612736, 1.5 GiB", "1126, 1.1 KiB",
        "1023900, 1e+03 KiB", "1125899906842624, 1 PiB", "9223372036854775807, 8 EiB", "-1, 16 EiB"
    })
    void printsLikeSizeToStr(long bytes, String expected) {
        assertEquals(expected, Sizes.human(bytes));
    }

    @Test
    void theIntegerRoundingOfHumanAgreesWithFormatG() {
        // human rounds bytes / 2^(10i) in integer arithmetic; formatG (BigDecimal) is the reference: every size
        // below 2^53 whose quotient is a tie or next to one, powers of two and ten, and random ones
        java.util.List<Long> sizes = new java.util.ArrayList<>();
        for (int shift = 0; shift <= 50; shift += 10) {
            for (long m : new long[] {1, 5, 9, 10, 15, 95, 99, 100, 105, 995, 999, 1000, 1023, 1024}) {
                for (long d = -3; d <= 3; d++) {
                    sizes.add((m << shift) / 10 + d);
                    sizes.add((m << shift) / 100 + d);
                    sizes.add((m << shift) / 1000 + d);
                    sizes.add((m << shift) + d);
                    sizes.add(((2 * m + 1) << shift) / 2000 + d); // ties at three decimals
                    sizes.add(((2 * m + 1) << shift) / 200 + d);
                    sizes.add(((2 * m + 1) << shift) / 20 + d);
                }
            }
        }
        java.util.SplittableRandom random = new java.util.SplittableRandom();
        for (int n = 0; n < 20000; n++) {
            sizes.add(random.nextLong(1L << random.nextInt(1, 54)));
        }
        for (long bytes : sizes) {
            if (bytes <= 0 || bytes >= 1L << 53) {
                continue;
            }
            double v = bytes;
            int exp = Math.getExponent(v / (1000.0 / 1024.0)) + 1;
            int i = (exp - 1) / 10;
            String unit = new String[] {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}[i];
            assertEquals(Sizes.formatG(v / Math.scalb(1.0, i * 10), 3) + " " + unit + "B", Sizes.human(bytes),
                    "size " + bytes);
        }
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
        "0, 0 bytes", "1, 1 bytes", "40, 40 bytes", "275.262566, 275.262566 bytes", "1024, 1 KiB",
        "1536, 1.500 KiB", "4190208, 3.996 MiB", "65536, 64 KiB", "4194304, 4 MiB",
        "1152921504606846976, 1 EiB"
    })
    void printsLikeCvtstr(double value, String expected) {
        assertEquals(expected, Sizes.ioUnits(value));
    }

    @ParameterizedTest(name = "%.3g of {0} = {1}")
    @CsvSource({"1, 1", "1.5, 1.5", "0.9765625, 0.977", "999.9, 1e+03", "12345, 1.23e+04", "0.0001234, 0.000123",
        "0.00001234, 1.23e-05", "64, 64", "100, 100", "0.5, 0.5", "2.0005, 2"})
    void formatsLikePrintfG(double value, String expected) {
        assertEquals(expected, Sizes.formatG(value, 3));
    }
}
