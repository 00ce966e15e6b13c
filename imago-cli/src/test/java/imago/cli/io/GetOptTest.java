package imago.cli.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class GetOptTest {
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private List<String> parse(String optstring, String... args) {
        GetOpt g = new GetOpt("read", List.of(args), optstring, new PrintStream(err, true, StandardCharsets.UTF_8));
        List<String> seen = new ArrayList<>();
        for (int c; (c = g.next()) != GetOpt.DONE; ) {
            seen.add((char) c + (g.optarg() != null ? "=" + g.optarg() : ""));
        }
        seen.add("|" + String.join(",", g.operands()));
        return seen;
    }

    @Test
    void handlesClustersAttachedArgumentsAndPermutation() {
        assertEquals(List.of("q", "v", "P=0xab", "|0,1"), parse("qvP:", "-qv", "0", "-P", "0xab", "1"));
        assertEquals(List.of("P=0x1", "q", "|1M,64k"), parse("qP:", "-P0x1", "1M", "-q", "64k"));
        assertEquals(List.of("q", "|-v,1"), parse("qv", "-q", "--", "-v", "1"));
        assertEquals(List.of("|-,x"), parse("q", "-", "x"));
        assertEquals("", err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void reportsUnknownOptionsAndMissingArgumentsLikeGlibc() {
        assertEquals(List.of("?", "|0"), parse("q", "-x", "0"));
        assertEquals(List.of("?", "|"), parse("qP:", "-P"));
        assertEquals("read: invalid option -- 'x'\nread: option requires an argument -- 'P'\n",
                err.toString(StandardCharsets.UTF_8));
    }
}
