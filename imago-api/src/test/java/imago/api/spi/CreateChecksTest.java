package imago.api.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Preallocation;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The shared create checks pass what they should and refuse the rest with qemu-img's words. */
class CreateChecksTest {
    private static final List<String> KNOWN = List.of("subformat", "force_size");

    private static String refusal(Runnable check) {
        return assertThrows(IllegalArgumentException.class, check::run).getMessage();
    }

    @Test
    void onlyTheFormatsOwnOptionsPass() {
        CreateChecks.knownOptionsOnly(CreateOptions.builder().option("force_size", "on").build(), "vpc", KNOWN);
        CreateChecks.knownOptionsOnly(CreateOptions.ofSize(1), "vpc", List.of());
        assertEquals("Invalid parameter 'cluster_size' for format vpc (known: subformat, force_size)",
                refusal(() -> CreateChecks.knownOptionsOnly(CreateOptions.builder().option("subformat", "fixed")
                        .option("cluster_size", "1M").build(), "vpc", KNOWN)));
    }

    @Test
    void numbersReadAsQemusOptionParserReadsThem() {
        assertEquals(16, CreateChecks.number("n", "16"));
        assertEquals(16, CreateChecks.number("n", "0x10"));
        assertEquals(8, CreateChecks.number("n", "010"));
        assertEquals(0, CreateChecks.number("n", "0"));
        assertEquals(-1, CreateChecks.number("n", "-1")); // 2^64 - 1, as strtoull wraps it
        assertEquals(-1, CreateChecks.number("n", "0xffffffffffffffff"));
        for (String bad : new String[] {"16k", "1.5", "abc", "", "0x", "08", "1 "}) {
            assertEquals("Parameter 'n' expects a number", refusal(() -> CreateChecks.number("n", bad)), bad);
        }
        assertEquals("Value '0x10000000000000000' is too large for parameter 'n'",
                refusal(() -> CreateChecks.number("n", "0x10000000000000000")));
    }

    @Test
    void aBackingFileIsRefused() {
        CreateChecks.noBackingFile(CreateOptions.ofSize(1), "vdi");
        assertEquals("Backing file not supported for file format 'vdi'", refusal(() -> CreateChecks.noBackingFile(
                CreateOptions.builder().backingFile("base.raw").build(), "vdi")));
    }

    @Test
    void aSizeIsNeeded() {
        assertEquals(4096, CreateChecks.size(CreateOptions.ofSize(4096)));
        assertEquals("Image creation needs a size parameter", refusal(() -> CreateChecks.size(
                CreateOptions.builder().build())));
    }

    @Test
    void sizeOptionsTakeBinarySuffixesUpToTheLargestGiven() {
        assertEquals(512, CreateChecks.sizeOption("k", " 512 ", 'g', Long.MAX_VALUE, true));
        assertEquals(512, CreateChecks.sizeOption("k", "512b", 'g', Long.MAX_VALUE, true));
        assertEquals(64L << 10, CreateChecks.sizeOption("k", "64K", 'g', Long.MAX_VALUE, true));
        assertEquals(2L << 30, CreateChecks.sizeOption("k", "2g", 'g', Long.MAX_VALUE, true));
        assertEquals(2L << 40, CreateChecks.sizeOption("k", "2T", 't', Long.MAX_VALUE, true));
        assertEquals(7L << 60, CreateChecks.sizeOption("k", "7E", 'e', Long.MAX_VALUE, false));
        assertEquals("Parameter 'k' expects a size, got '2T'",
                refusal(() -> CreateChecks.sizeOption("k", "2T", 'g', Long.MAX_VALUE, true)));
        assertEquals("Parameter 'k' expects a size", refusal(() -> CreateChecks.sizeOption("k", "8E", 'e',
                Long.MAX_VALUE, false)));
        for (String bad : new String[] {"", "k", "-1", "1.5M", "0x10", "1 k"}) {
            assertEquals("Parameter 'k' expects a size, got '" + bad + "'",
                    refusal(() -> CreateChecks.sizeOption("k", bad, 't', Long.MAX_VALUE, true)), bad);
        }
    }

    @Test
    void sizeOptionsStopAtTheirMaximum() {
        assertEquals(Integer.MAX_VALUE, CreateChecks.sizeOption("c", "2147483647", 't', Integer.MAX_VALUE, true));
        assertEquals(1023L << 20, CreateChecks.sizeOption("c", "1023M", 't', Integer.MAX_VALUE, true));
        for (String big : new String[] {"2147483648", "2G", "2097152k"}) {
            assertEquals("Parameter 'c' expects a size, got '" + big + "'",
                    refusal(() -> CreateChecks.sizeOption("c", big, 't', Integer.MAX_VALUE, true)), big);
        }
        assertEquals("Parameter 'c' expects a size, got '8589934592G'",
                refusal(() -> CreateChecks.sizeOption("c", "8589934592G", 'g', Long.MAX_VALUE, true)));
    }

    @Test
    void switchesTakeQemusWords() {
        for (String on : List.of("on", "yes", "true", "y")) {
            assertTrue(CreateChecks.onOff(Map.of("k", on), "k", false), on);
        }
        for (String off : List.of("off", "no", "false", "n")) {
            assertFalse(CreateChecks.onOff(Map.of("k", off), "k", true), off);
        }
        assertTrue(CreateChecks.onOff(Map.of(), "k", true));
        assertFalse(CreateChecks.onOff(Map.of(), "k", false));
        assertEquals("Parameter 'k' expects 'on' or 'off'", refusal(() -> CreateChecks.onOff(Map.of("k", "ON"), "k",
                false)));
    }

    @Test
    void wordOptionsTakeTheirWords() {
        assertEquals("dynamic", CreateChecks.oneOf(Map.of(), "subformat", "dynamic", "fixed"));
        assertEquals("dynamic", CreateChecks.oneOf(Map.of("subformat", "dynamic"), "subformat", "dynamic", "fixed"));
        assertEquals("fixed", CreateChecks.oneOf(Map.of("subformat", "fixed"), "subformat", "dynamic", "fixed"));
        assertEquals("Parameter 'subformat' does not accept value 'sparse'", refusal(() -> CreateChecks.oneOf(
                Map.of("subformat", "sparse"), "subformat", "dynamic", "fixed")));
    }

    @Test
    void theFileLayerRefusesOnlyMetadataPreallocation() {
        for (Preallocation p : List.of(Preallocation.OFF, Preallocation.FALLOC, Preallocation.FULL)) {
            CreateChecks.fileLayerPreallocation(CreateOptions.builder().size(1).preallocation(p).build());
        }
        assertEquals("Unsupported preallocation mode: metadata", refusal(() -> CreateChecks.fileLayerPreallocation(
                CreateOptions.builder().size(1).preallocation(Preallocation.METADATA).build())));
    }

    @Test
    void theEncryptionAliasIsOnOffAndAnyOtherWordAFormatName() {
        assertEquals("aes", CreateChecks.encryptionFormat(Map.of("encryption", "on")));
        assertEquals(null, CreateChecks.encryptionFormat(Map.of("encryption", "off")));
        assertEquals(null, CreateChecks.encryptionFormat(Map.of()));
        assertEquals("luks", CreateChecks.encryptionFormat(Map.of("encrypt.format", "luks")));
        for (String word : List.of("yes", "true", "y", "no", "false", "n")) {
            assertEquals(word, CreateChecks.encryptionFormat(Map.of("encryption", word)), word);
        }
        assertEquals("'encrypt.format' and its alias 'encryption' can't be used at the same time", refusal(() ->
                CreateChecks.encryptionFormat(Map.of("encryption", "off", "encrypt.format", "luks"))));
    }
}
