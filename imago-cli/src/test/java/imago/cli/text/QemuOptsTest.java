package imago.cli.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QemuOptsTest {

    @Test
    void parsesListsWithEscapedCommasAndFlags() {
        Map<String, String> m = QemuOpts.parse(List.of("preallocation=full,cluster_size=64k", "backing_file=a,,b.img",
                "lazy_refcounts", "cluster_size=128k"));
        assertEquals(List.of("preallocation", "backing_file", "lazy_refcounts", "cluster_size"), List.copyOf(m.keySet()));
        assertEquals("a,b.img", m.get("backing_file"));
        assertEquals("on", m.get("lazy_refcounts"));
        assertEquals("128k", m.get("cluster_size"));
        assertEquals(Map.of(), QemuOpts.parse(List.of("", ",")));
        assertThrows(IllegalArgumentException.class, () -> QemuOpts.parse(List.of("=x")));
        assertEquals("a,,b", QemuOpts.escape("a,b"));
    }
}
