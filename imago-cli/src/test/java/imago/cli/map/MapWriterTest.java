package imago.cli.map;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class MapWriterTest {
    @Test
    void hexColumnsAreCsAlternateFormLeftJustified() {
        assertEquals("0               ", MapWriter.hex16(0));
        assertEquals("0x1000          ", MapWriter.hex16(4096));
        assertEquals("0x7fffffffffffffff", MapWriter.hex16(Long.MAX_VALUE));
    }
}
