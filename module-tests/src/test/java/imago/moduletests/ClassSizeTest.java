package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * No main-code source file past {@value #MAX_LINES} lines, in any module: a class that long holds more than one
 * concern, and its reader cannot find their room in it. The few that are longer are listed in {@link #EXCEPTIONS}
 * with the reason (docs/ARCHITECTURE.md says more); a listed file that got short enough must leave the list.
 */
class ClassSizeTest {
    static final int MAX_LINES = 500;

    /**
     * Files allowed to be longer for now, by path from the repository root, with why (none since Qcow2Refcounts and
     * LayeredImage were split; a new entry needs its reason in docs/ARCHITECTURE.md too).
     */
    static final Map<String, String> EXCEPTIONS = Map.of();

    @Test
    void noMainClassIsLongerThanTheLimit() throws IOException {
        Path root = repositoryRoot();
        List<String> tooLong = new ArrayList<>();
        Map<String, Long> lengths = new TreeMap<>();
        try (Stream<Path> modules = Files.list(root)) {
            for (Path module : modules.filter(m -> Files.isDirectory(m.resolve("src/main/java"))).toList()) {
                try (Stream<Path> files = Files.walk(module.resolve("src/main/java"))) {
                    for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                        long lines;
                        try (Stream<String> s = Files.lines(f)) {
                            lines = s.count();
                        }
                        String name = root.relativize(f).toString().replace('\\', '/');
                        lengths.put(name, lines);
                        if (lines > MAX_LINES && !EXCEPTIONS.containsKey(name)) {
                            tooLong.add(name + ": " + lines + " lines");
                        }
                    }
                }
            }
        }
        assertTrue(lengths.keySet().stream().anyMatch(n -> n.startsWith("imago-qcow2/")),
                "the sources were found under " + root);
        assertTrue(tooLong.isEmpty(), "main classes longer than " + MAX_LINES + " lines (split them by concern, "
                + "or list them with a reason): " + tooLong);
        List<String> stale = EXCEPTIONS.keySet().stream()
                .filter(n -> lengths.containsKey(n) && lengths.get(n) <= MAX_LINES).sorted().toList();
        assertTrue(stale.isEmpty(), "no longer too long, so off the exception list: " + stale);
    }

    /** The repository root: the tests run in module-tests, one level below it. */
    static Path repositoryRoot() {
        Path here = Path.of("").toAbsolutePath();
        for (Path p = here; p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("pom.xml")) && Files.isDirectory(p.resolve("imago-qcow2"))) {
                return p;
            }
        }
        throw new IllegalStateException("no repository root above " + here);
    }
}
