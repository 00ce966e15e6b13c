package imago.moduletests;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;
import java.lang.module.ModuleDescriptor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The arrows of DESIGN.md, checked on the compiled classes of every module (tests excluded: tests may
 * use anything). A JPMS module here is its root package, as STYLE.md has it: one module, one root
 * package.
 */
class ArchitectureTest {
    /** Every module's root package; the longest matching root names a class's module. */
    static final List<String> MODULES = List.of("imago.api", "imago.probe", "imago.nbd", "imago.cli", "imago.raw",
            "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc", "imago.bochs", "imago.cloop", "imago.dmg",
            "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx", "imago.vdi", "imago.parallels", "imago.storage.file",
            "imago.storage.memory", "imago.moduletests", "imago.testkit");
    /** Modules that implement the SPI: only imago.api may be below them, and nothing above them. */
    static final List<String> PLUGINS = List.of("imago.raw", "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc",
            "imago.bochs", "imago.cloop", "imago.dmg", "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx",
            "imago.vdi", "imago.parallels", "imago.storage.file", "imago.storage.memory", "imago.moduletests");
    /** Format and storage modules: nothing but tests and run-time ServiceLoader lookups reach them. */
    static final List<String> PROVIDERS = List.of("imago.raw", "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc",
            "imago.bochs", "imago.cloop", "imago.dmg", "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx",
            "imago.vdi", "imago.parallels", "imago.storage.file", "imago.storage.memory");
    static final List<String> FORMATS = List.of("imago.raw", "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc",
            "imago.bochs", "imago.cloop", "imago.dmg", "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx",
            "imago.vdi", "imago.parallels");

    static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("imago");
    }

    /** The module a class belongs to, by the longest matching root package. */
    static Optional<String> moduleOf(JavaClass c) {
        String pkg = c.getPackageName();
        return MODULES.stream().filter(m -> pkg.equals(m) || pkg.startsWith(m + "."))
                .max((a, b) -> Integer.compare(a.length(), b.length()));
    }

    static String[] packages(List<String> modules) {
        return modules.stream().map(m -> m + "..").toArray(String[]::new);
    }

    /** Guards against rules that pass because nothing was imported (a module missing from the path). */
    @Test
    void everyModuleIsImported() {
        Map<String, Long> counts = classes.stream().map(ArchitectureTest::moduleOf).flatMap(Optional::stream)
                .collect(Collectors.groupingBy(m -> m, TreeMap::new, Collectors.counting()));
        assertEquals(new TreeSet<>(MODULES), counts.keySet(), "modules with classes: " + counts);
    }

    /** The test kit serves tests only: no module's main code may use it. */
    @Test
    void onlyTestsUseTheTestKit() {
        noClasses().that().resideOutsideOfPackage("imago.testkit..")
                .should().dependOnClassesThat().resideInAPackage("imago.testkit..").check(classes);
    }

    @Test
    void everyImagoClassIsInAModule() {
        classes().that().resideInAPackage("imago..")
                .should(new ArchCondition<>("belong to one of " + MODULES) {
                    @Override
                    public void check(JavaClass c, ConditionEvents events) {
                        if (moduleOf(c).isEmpty()) {
                            events.add(SimpleConditionEvent.violated(c, c.getName() + " is in no known module"));
                        }
                    }
                }).check(classes);
    }

    static List<String> plugins() {
        return PLUGINS;
    }

    static List<String> providers() {
        return PROVIDERS;
    }

    /** Format and storage modules (and the third-party plug-in) see imago.api and nothing else of imago. */
    @ParameterizedTest
    @MethodSource("plugins")
    void pluginsDependOnlyOnTheApi(String module) {
        onlyTheApi(module).check(classes);
    }

    static ArchRule onlyTheApi(String module) {
        return classes().that().resideInAPackage(module + "..")
                .should().onlyDependOnClassesThat(resideOutsideOfImagoOrIn(module + "..", "imago.api.."));
    }

    /**
     * The rules are not vacuous: this module's tests, which use imago.probe and the memory storage as
     * tests may, break the rule that its main code (the plug-in) keeps.
     */
    @Test
    void theRulesCatchAViolation() {
        JavaClasses tests = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.ONLY_INCLUDE_TESTS)
                .importPackages("imago.moduletests");
        AssertionError e = assertThrows(AssertionError.class, () -> onlyTheApi("imago.moduletests").check(tests));
        assertTrue(e.getMessage().contains("imago.probe.Imago"), e.getMessage());
    }

    /** Nothing names a format or storage module: imago.probe finds them at run time through ServiceLoader. */
    @ParameterizedTest
    @MethodSource("providers")
    void nothingDependsOnAProvider(String module) {
        noClasses().that().resideOutsideOfPackage(module + "..")
                .should().dependOnClassesThat().resideInAPackage(module + "..")
                .check(classes);
    }

    @Test
    void cliUsesOnlyProbeNbdAndApi() {
        classes().that().resideInAPackage("imago.cli..")
                .should().onlyDependOnClassesThat(
                        resideOutsideOfImagoOrIn("imago.cli..", "imago.probe..", "imago.nbd", "imago.api.."))
                .check(classes);
    }

    /** The NBD server serves an Image through the user API alone; nothing outside it sees its protocol package. */
    @Test
    void nbdUsesOnlyTheApiAndKeepsItsProtocolInside() {
        classes().that().resideInAPackage("imago.nbd..")
                .should().onlyDependOnClassesThat(resideOutsideOfImagoOrIn("imago.nbd..", "imago.api.."))
                .check(classes);
        noClasses().that().resideOutsideOfPackage("imago.nbd..")
                .should().dependOnClassesThat().resideInAPackage("imago.nbd.internal..")
                .check(classes);
    }

    @Test
    void probeUsesOnlyTheApi() {
        classes().that().resideInAPackage("imago.probe..")
                .should().onlyDependOnClassesThat(resideOutsideOfImagoOrIn("imago.probe..", "imago.api.."))
                .check(classes);
    }

    @Test
    void apiDependsOnNoOtherModule() {
        classes().that().resideInAPackage("imago.api..")
                .should().onlyDependOnClassesThat(resideOutsideOfImagoOrIn("imago.api.."))
                .check(classes);
    }

    @Test
    void apiNamesNoFormat() {
        noClasses().that().resideInAPackage("imago.api..")
                .should().dependOnClassesThat().resideInAnyPackage(packages(FORMATS))
                .check(classes);
    }

    /**
     * Implementation packages ({@code <module>.internal} and below) are used only inside their own
     * module: module-info does not export them, and this keeps class-path users honest too.
     */
    @Test
    void internalPackagesStayInsideTheirModule() {
        ArchRule rule = classes().that().resideInAPackage("imago..")
                .should(new ArchCondition<>("access no implementation (…internal) package of another module") {
                    @Override
                    public void check(JavaClass origin, ConditionEvents events) {
                        Optional<String> from = moduleOf(origin);
                        for (Dependency d : origin.getDirectDependenciesFromSelf()) {
                            JavaClass target = d.getTargetClass();
                            if (!isInternal(target)) {
                                continue;
                            }
                            Optional<String> to = moduleOf(target);
                            if (!from.equals(to)) {
                                events.add(SimpleConditionEvent.violated(d, d.getDescription() + " crosses from "
                                        + from.orElse("?") + " into the internals of " + to.orElse("?")));
                            }
                        }
                    }
                });
        rule.check(classes);
    }

    static boolean isInternal(JavaClass c) {
        String pkg = c.getPackageName();
        return pkg.startsWith("imago.") && (pkg.endsWith(".internal") || pkg.contains(".internal."));
    }

    // ---------------------------------------------------------------- the same arrows in module-info

    /** The imago modules each module-info {@code requires}: only those the arrows allow. */
    @Test
    void moduleInfoRequiresFollowTheArrows() {
        Map<String, Set<String>> allowed = new TreeMap<>();
        for (String m : PLUGINS) {
            allowed.put(m, Set.of("imago.api"));
        }
        allowed.put("imago.api", Set.of());
        allowed.put("imago.probe", Set.of("imago.api"));
        allowed.put("imago.nbd", Set.of("imago.api"));
        allowed.put("imago.cli", Set.of("imago.api", "imago.probe", "imago.nbd"));
        allowed.put("imago.testkit", Set.of("imago.api"));
        List<String> problems = new ArrayList<>();
        for (String m : MODULES) {
            ModuleDescriptor d = ModuleJars.get(m).descriptor();
            Set<String> imago = d.requires().stream().map(ModuleDescriptor.Requires::name)
                    .filter(r -> r.startsWith("imago.")).collect(Collectors.toCollection(TreeSet::new));
            if (!allowed.get(m).containsAll(imago)) {
                problems.add(m + " requires " + imago + ", allowed: " + allowed.get(m));
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /**
     * Implementation packages stay closed: no module exports (or opens) an {@code internal} package,
     * exports reach only the module's own root package tree, and the third-party plug-in exports nothing.
     */
    @Test
    void moduleInfoExportsNoImplementationPackage() {
        List<String> problems = new ArrayList<>();
        for (String m : MODULES) {
            ModuleDescriptor d = ModuleJars.get(m).descriptor();
            Stream.concat(d.exports().stream().map(ModuleDescriptor.Exports::source),
                    d.opens().stream().map(ModuleDescriptor.Opens::source)).forEach(pkg -> {
                        if (pkg.endsWith(".internal") || pkg.contains(".internal.")) {
                            problems.add(m + " exports or opens its implementation package " + pkg);
                        }
                        if (!pkg.equals(m) && !pkg.startsWith(m + ".")) {
                            problems.add(m + " exports or opens " + pkg + ", outside its root package " + m);
                        }
                    });
            if (d.isOpen()) {
                problems.add(m + " is an open module");
            }
        }
        ModuleDescriptor plugin = ModuleJars.get("imago.moduletests").descriptor();
        if (!plugin.exports().isEmpty()) {
            problems.add("imago.moduletests exports " + plugin.exports() + ": a format plug-in needs only provides");
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    private static DescribedPredicate<JavaClass> resideOutsideOfImagoOrIn(String... packages) {
        return JavaClass.Predicates.resideOutsideOfPackage("imago..")
                .or(JavaClass.Predicates.resideInAnyPackage(packages));
    }
}
