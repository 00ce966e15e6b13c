package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What makes the modules publishable: the BOM pins every published module (and nothing else), and
 * every published module says what it is. A module is published unless its POM sets
 * {@code maven.deploy.skip} or it makes no jar (the BOM itself, the distribution).
 */
class PublishedPomsTest {
    private static final Pattern MODULE = Pattern.compile("<module>([^<]+)</module>");
    private static final Pattern ARTIFACT = Pattern.compile("<artifactId>([^<]+)</artifactId>");

    @Test
    void theBomPinsEveryPublishedModule() throws IOException {
        Path root = root();
        TreeSet<String> published = new TreeSet<>();
        for (String module : all(MODULE, Files.readString(root.resolve("pom.xml")))) {
            String pom = Files.readString(root.resolve(module).resolve("pom.xml"));
            if (pom.contains("<maven.deploy.skip>true") || module.equals("imago-bom") || module.equals("imago-dist")) {
                continue;
            }
            published.add(module);
            assertTrue(pom.contains("<name>") && pom.contains("<description>"), module + " has no name or description");
        }
        String bom = Files.readString(root.resolve("imago-bom/pom.xml"));
        String managed = bom.substring(bom.indexOf("<dependencyManagement>"), bom.indexOf("</dependencyManagement>"));
        assertEquals(published, new TreeSet<>(all(ARTIFACT, managed)));
        assertTrue(published.contains("imago-qcow2") && published.contains("imago-cli"), published.toString());
        assertFalse(published.contains("benchmarks"));
    }

    @Test
    void theParentHasWhatMavenCentralAsks() throws IOException {
        String parent = Files.readString(root().resolve("pom.xml"));
        for (String element : List.of("<name>", "<description>", "<url>", "<licenses>", "<scm>", "<developers>")) {
            assertTrue(parent.contains(element), element);
        }
    }

    private static List<String> all(Pattern p, String text) {
        List<String> found = new ArrayList<>();
        for (Matcher m = p.matcher(text); m.find(); ) {
            found.add(m.group(1));
        }
        return found;
    }

    private static Path root() {
        String root = System.getenv("IMAGO_REPO_ROOT");
        assertNotNull(root, "IMAGO_REPO_ROOT (set by the parent pom for surefire)");
        return Path.of(root);
    }
}
