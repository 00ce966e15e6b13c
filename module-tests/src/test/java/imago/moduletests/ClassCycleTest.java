package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * No cycle between the classes of one package: a package whose classes depend on each other in a circle cannot be
 * read one class at a time, and one class ends up holding everything (qcow2's Qcow2Instance did). ArchUnit's
 * {@code slices().should().beFreeOfCycles()} compares packages; here the nodes are the top-level classes of a
 * package (a nested, local or anonymous class counts as the class it sits in), the edges every dependency the
 * compiled classes have on another class of the same package (calls, fields, types, inheritance, lambdas; not
 * compile-time constants, which javac inlines, nor javadoc). Checked in every package of every module.
 */
class ClassCycleTest {
    /**
     * Cycles that were there before the rule, by package; each is to be broken (then it must leave the list). Every
     * other package, the qcow2 implementation's rooms first, has none.
     */
    static final Map<String, List<Set<String>>> KNOWN = Map.of(
            "imago.api.spi", List.of(Set.of("Storage", "ZeroBuffers")),
            "imago.cow.internal", List.of(Set.of("CowFields", "CowHeader")));

    static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("imago");
    }

    @Test
    void noPackageHasClassesInACircle() {
        List<String> problems = new ArrayList<>();
        Set<String> packages = classes.stream().map(JavaClass::getPackageName).filter(p -> p.startsWith("imago."))
                .collect(Collectors.toCollection(TreeSet::new));
        for (String pkg : packages) {
            List<Set<String>> cycles = cycles(graph(pkg));
            List<Set<String>> known = KNOWN.getOrDefault(pkg, List.of());
            if (!known.containsAll(cycles)) {
                problems.add(pkg + " has classes that depend on each other in a circle: " + cycles);
            } else if (!cycles.containsAll(known)) {
                problems.add(pkg + ": the known cycle is gone, take it off the list: " + known);
            }
        }
        assertTrue(packages.contains("imago.qcow2.internal"), "the qcow2 implementation was imported");
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /** The tool finds a cycle where there is one (a graph of three classes in a circle and one outside). */
    @Test
    void aCycleIsFound() {
        Map<String, Set<String>> g = new TreeMap<>();
        g.put("A", new TreeSet<>(Set.of("B")));
        g.put("B", new TreeSet<>(Set.of("C")));
        g.put("C", new TreeSet<>(Set.of("A", "D")));
        g.put("D", new TreeSet<>());
        assertEquals(List.of(Set.of("A", "B", "C")), cycles(g));
        Map<String, Set<String>> qcow2 = graph("imago.qcow2.internal");
        assertTrue(qcow2.size() > 20 && qcow2.get("Qcow2Instance").contains("Qcow2Resize"),
                "the qcow2 implementation was imported with its dependencies: " + qcow2.get("Qcow2Instance"));
    }

    /** The top-level classes of {@code pkg} and, for each, the others of {@code pkg} it depends on. */
    static Map<String, Set<String>> graph(String pkg) {
        Map<String, Set<String>> g = new TreeMap<>();
        for (JavaClass c : classes) {
            if (!c.getPackageName().equals(pkg)) {
                continue;
            }
            String from = topLevel(c);
            Set<String> to = g.computeIfAbsent(from, k -> new TreeSet<>());
            for (Dependency d : c.getDirectDependenciesFromSelf()) {
                JavaClass target = d.getTargetClass();
                if (target.getPackageName().equals(pkg) && !topLevel(target).equals(from)) {
                    to.add(topLevel(target));
                }
            }
        }
        return g;
    }

    private static String topLevel(JavaClass c) {
        String name = c.getName().substring(c.getPackageName().length() + 1);
        int nested = name.indexOf('$');
        return nested < 0 ? name : name.substring(0, nested);
    }

    /** The strongly connected components of more than one node (Tarjan), each as a sorted set. */
    static List<Set<String>> cycles(Map<String, Set<String>> g) {
        Map<String, Integer> index = new HashMap<>();
        Map<String, Integer> low = new HashMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<Set<String>> out = new ArrayList<>();
        int[] next = {0};
        for (String v : g.keySet()) {
            if (!index.containsKey(v)) {
                connect(v, g, index, low, stack, onStack, out, next);
            }
        }
        return out.stream().sorted((a, b) -> a.toString().compareTo(b.toString())).collect(Collectors.toList());
    }

    private static void connect(String v, Map<String, Set<String>> g, Map<String, Integer> index,
            Map<String, Integer> low, Deque<String> stack, Set<String> onStack, List<Set<String>> out, int[] next) {
        index.put(v, next[0]);
        low.put(v, next[0]);
        next[0]++;
        stack.push(v);
        onStack.add(v);
        for (String w : g.getOrDefault(v, Set.of())) {
            if (!index.containsKey(w)) {
                connect(w, g, index, low, stack, onStack, out, next);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (onStack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            Set<String> component = new TreeSet<>();
            String w;
            do {
                w = stack.pop();
                onStack.remove(w);
                component.add(w);
            } while (!w.equals(v));
            if (component.size() > 1) {
                out.add(component);
            }
        }
    }
}
