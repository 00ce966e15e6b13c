package imago.cli.text;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class NumbersTest {
    @Test
    void readsLikeStrtoulWithBaseZero() {
        assertEquals(16, Numbers.unsigned("0x10", 100));
        assertEquals(8, Numbers.unsigned("010", 100));
        assertEquals(0, Numbers.unsigned("0", 100));
        assertEquals(0, Numbers.unsigned("-0", 100));
        assertEquals(12, Numbers.unsigned(" +12", 100));
        assertEquals(100, Numbers.unsigned("100", 100));
    }

    @Test
    void refusesMalformedNegativeAndTooLarge() {
        for (String bad : new String[] {"", "x", "12x", "0x", "08", "-1", "101", " ", "1 ", "--1", "0x-1"}) {
            assertEquals(-1, Numbers.unsigned(bad, 100), bad);
        }
        assertEquals(-1, Numbers.unsigned("99999999999999999999999", Long.MAX_VALUE));
    }
}
