package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The LUKS2 JSON reader: what cryptsetup writes parses, and each limit and malformation fails fast, named. */
class Luks2JsonTest {
    private static void refused(String json, String text) {
        Luks2Json.JsonException e = assertTimeoutPreemptively(Duration.ofSeconds(5),
                () -> assertThrows(Luks2Json.JsonException.class, () -> Luks2Json.parse(json)));
        assertTrue(e.getMessage().contains(text), e.getMessage());
    }

    @Test
    void readsCryptsetupMetadata() throws Luks2Json.JsonException {
        String text = "{\"keyslots\":{\"0\":{\"type\":\"luks2\",\"key_size\":64,\"af\":{\"type\":\"luks1\","
                + "\"stripes\":4000,\"hash\":\"sha256\"}}},\"tokens\":{},\"a\":[true,false,null,-12,\"x\\u00e9\\n\"]}";
        Object v = Luks2Json.parse(" \n" + text + "\t");
        Map<?, ?> root = (Map<?, ?>) v;
        assertEquals(List.of("keyslots", "tokens", "a"), List.copyOf(root.keySet()));
        assertEquals(64L, ((Map<?, ?>) ((Map<?, ?>) root.get("keyslots")).get("0")).get("key_size"));
        assertEquals(List.of(true, false, Luks2Json.NULL, -12L, "x\u00e9\n"), root.get("a"));
        assertEquals(v, Luks2Json.parse(Luks2Json.write(v)));
    }

    @Test
    void writesWhatItReads() throws Luks2Json.JsonException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "q\"b\\\u0001");
        m.put("n", Long.MAX_VALUE);
        m.put("l", List.of("0", 1L));
        assertEquals(m, Luks2Json.parse(Luks2Json.write(m)));
    }

    /** What amend rewrites reads back the same through UTF-8, lone surrogates (legal \\u escapes) included. */
    @Test
    void aRewriteThroughUtf8KeepsEveryString() throws Luks2Json.JsonException {
        Object v = Luks2Json.parse("{\"t\":[\"\\ud800x\",\"\\udc00\",\"\\ud83d\\ude00\",\"\u00e9\"],\"n\":null}");
        Object copy = Luks2Json.mutableCopy(v);
        assertEquals(v, copy);
        @SuppressWarnings("unchecked")
        List<Object> t = (List<Object>) ((Map<String, Object>) copy).get("t");
        t.add("more");
        assertEquals(4, ((List<?>) ((Map<?, ?>) v).get("t")).size(), "the copy is its own");
        String text = new String(Luks2Json.write(copy).getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
        assertEquals(copy, Luks2Json.parse(text));
    }

    @Test
    void limitsAndMalformations() {
        refused("[".repeat(100_000), "nested deeper than 16 levels");
        refused("{\"a\":".repeat(17) + "1" + "}".repeat(17), "nested deeper than 16 levels");
        refused("[" + "0,".repeat(70_000) + "0]", "more than 65536 JSON values");
        refused("\"" + "a".repeat(70_000) + "\"", "string longer than 65536 characters");
        refused("9".repeat(1_000_000), "number too large (1000000 digits)");
        refused("9223372036854775808", "number too large for 64 bits");
        refused("1e3", "not an integer");
        refused("01", "leading zero");
        refused("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
        refused("{\"a\":1}x", "trailing characters");
        refused("{\"a\":1", "JSON ends too early");
        refused("{a:1}", "object key must be a string");
        refused("\"\\x\"", "bad escape");
        refused("\"a\nb\"", "control character");
        refused("tru", "expected true");
        refused("", "JSON ends where a value should start");
    }
}
