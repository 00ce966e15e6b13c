package imago.moduletests;

import java.io.File;
import java.io.IOException;
import java.lang.module.FindException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The explicit (non-automatic) modules that this test JVM was given, wherever surefire put them: on
 * the module path ({@code jdk.module.path}) or the class path ({@code java.class.path}). Surefire
 * puts only what {@code imago.moduletests} requires on the module path and the rest on the class
 * path, and the reactor gives either jars or {@code target/classes} directories; reading both paths
 * makes the tests that build their own module layers independent of all that. A module missing from
 * both is looked for under {@code $IMAGO_REPO_ROOT/<artifact>/target/} (set by the parent pom).
 */
final class ModuleJars {
    /** The modules of imago's reactor. */
    static final Set<String> IMAGO = Set.of("imago.api", "imago.storage.file", "imago.storage.memory", "imago.raw",
            "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc", "imago.bochs", "imago.cloop", "imago.dmg",
            "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx", "imago.vdi", "imago.parallels", "imago.probe",
            "imago.nbd", "imago.cli", "imago.moduletests", "imago.testkit");
    /** The third-party modules imago's modules need at run time. */
    static final Set<String> THIRD_PARTY = Set.of("org.slf4j", "org.slf4j.simple", "info.picocli");

    private static final Map<String, ModuleReference> FOUND = scan();

    private ModuleJars() {
    }

    /** Every imago and third-party module found, by name. */
    static Map<String, ModuleReference> all() {
        return FOUND;
    }

    /** The module named {@code name}; fails the test with the places looked at when it is missing. */
    static ModuleReference get(String name) {
        ModuleReference ref = FOUND.get(name);
        if (ref == null) {
            throw new AssertionError("module " + name + " is neither on the module path nor on the class path "
                    + "of this test JVM nor under $IMAGO_REPO_ROOT/*/target; found: " + FOUND.keySet());
        }
        return ref;
    }

    /** Where module {@code name} is: its jar or its exploded directory. */
    static Path path(String name) {
        return Path.of(get(name).location().orElseThrow());
    }

    /** A finder over exactly the named modules. */
    static ModuleFinder finder(Set<String> names) {
        return ModuleFinder.of(names.stream().map(ModuleJars::path).toArray(Path[]::new));
    }

    private static Map<String, ModuleReference> scan() {
        List<Path> entries = new ArrayList<>();
        for (String property : List.of("jdk.module.path", "java.class.path")) {
            String value = System.getProperty(property, "");
            for (String e : value.split(File.pathSeparator)) {
                if (!e.isBlank()) {
                    entries.add(Path.of(e));
                }
            }
        }
        Map<String, ModuleReference> found = new LinkedHashMap<>();
        addModules(entries, found);
        String root = System.getenv("IMAGO_REPO_ROOT");
        if (root != null && !found.keySet().containsAll(IMAGO)) {
            addModules(reactorOutputs(Path.of(root)), found);
        }
        return found.entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue,
                (a, b) -> a, TreeMap::new));
    }

    private static void addModules(List<Path> entries, Map<String, ModuleReference> found) {
        for (Path p : entries) {
            boolean candidate = Files.isDirectory(p) ? Files.isRegularFile(p.resolve("module-info.class"))
                    : p.toString().endsWith(".jar") && Files.isRegularFile(p);
            if (!candidate) {
                continue;
            }
            try {
                for (ModuleReference ref : ModuleFinder.of(p).findAll()) {
                    String name = ref.descriptor().name();
                    if (!ref.descriptor().isAutomatic() && (IMAGO.contains(name) || THIRD_PARTY.contains(name))) {
                        found.putIfAbsent(name, ref);
                    }
                }
            } catch (FindException e) {
                // not a module we care about (e.g. an automatic module with an invalid name)
            }
        }
    }

    /** {@code <root>/<artifact>/target/classes} and the jars next to it, for IDE runs. */
    private static List<Path> reactorOutputs(Path root) {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> modules = Files.newDirectoryStream(root, Files::isDirectory)) {
            for (Path m : modules) {
                Path target = m.resolve("target");
                out.add(target.resolve("classes"));
                if (Files.isDirectory(target)) {
                    try (DirectoryStream<Path> jars = Files.newDirectoryStream(target, "*.jar")) {
                        jars.forEach(out::add);
                    }
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }
}
