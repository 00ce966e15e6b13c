package imago.cli.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void ordersKeysAsQemusQdictDoes() {
        // qemu-img info --output=json of a raw image, whatever order the fields are given in
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", "x.img");
        m.put("format", "raw");
        m.put("dirty-flag", false);
        m.put("actual-size", 69632L);
        m.put("virtual-size", 67108864L);
        assertEquals("""
                {
                    "virtual-size": 67108864,
                    "filename": "x.img",
                    "format": "raw",
                    "actual-size": 69632,
                    "dirty-flag": false
                }""", Json.pretty(m));
    }

    @Test
    void ordersQcow2InfoKeysAsQemuPrintsThem() {
        // the order qemu-img 7.2 prints for a qcow2 overlay
        List<String> expected = List.of("backing-filename-format", "virtual-size", "filename", "cluster-size", "format",
                "actual-size", "format-specific", "full-backing-filename", "backing-filename", "dirty-flag");
        List<String> qapi = List.of("filename", "format", "dirty-flag", "actual-size", "virtual-size", "cluster-size",
                "backing-filename", "full-backing-filename", "backing-filename-format", "format-specific");
        assertEquals(expected, Json.qdictOrder(qapi));
        assertEquals(List.of("compat", "compression-type", "lazy-refcounts", "refcount-bits", "corrupt", "extended-l2"),
                Json.qdictOrder(List.of("compat", "extended-l2", "lazy-refcounts", "corrupt", "refcount-bits",
                        "compression-type")));
        assertEquals(List.of("type", "data"), Json.qdictOrder(List.of("type", "data")));
    }

    @Test
    void keysInOneBucketComeNewestFirst() {
        java.util.Map<Integer, String> seen = new java.util.HashMap<>();
        String a = null;
        String b = null;
        for (int i = 0; b == null; i++) { // two keys in one bucket: a birthday collision comes soon
            String candidate = "k" + i;
            a = seen.putIfAbsent(Json.bucket(candidate), candidate);
            if (a != null) {
                b = candidate;
            }
        }
        assertEquals(List.of(b, a), Json.qdictOrder(List.of(a, b)));
        assertEquals(List.of(a, b), Json.qdictOrder(List.of(b, a)));
    }

    @Test
    void writesNestedValuesEmptyContainersAndEscapes() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("type", "qcow2");
        inner.put("data", Map.of());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format-specific", inner);
        m.put("snapshots", List.of());
        assertEquals("""
                {
                    "snapshots": [
                    ],
                    "format-specific": {
                        "type": "qcow2",
                        "data": {
                        }
                    }
                }""", Json.pretty(m));
        assertEquals("\"a\\\"b\\\\c\\n\\t\\u0001/\\u00E9\\uD83D\\uDE00\\u007F\"", Json.pretty("a\"b\\c\n\t\u0001/é😀\u007f"));
        assertEquals("[\n    1,\n    true,\n    null,\n    \"x\"\n]", Json.pretty(java.util.Arrays.asList(1, true, null, "x")));
        assertEquals("-5", Json.pretty(-5L));
        assertEquals("1.5", Json.pretty(1.5));
        assertEquals("0.10000000000000001", Json.pretty(0.1));
        assertThrows(IllegalArgumentException.class, () -> Json.pretty(new Object()));
    }

    /** One line, as in qemu's json: names, ", " between members at every level, the keys in QDict order. */
    @Test
    void writesOnOneLine() {
        Map<String, Object> file = new LinkedHashMap<>();
        file.put("driver", "file");
        file.put("filename", "a\"b");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("driver", "qcow2");
        m.put("encrypt.key-secret", "s");
        m.put("file", file);
        m.put("x", java.util.Arrays.asList(1, List.of(), Map.of()));
        assertEquals("{\"x\": [1, [], {}], \"encrypt.key-secret\": \"s\", \"driver\": \"qcow2\", \"file\": "
                + "{\"driver\": \"file\", \"filename\": \"a\\\"b\"}}", Json.compact(m));
    }
}
