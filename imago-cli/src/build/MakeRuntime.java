import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A build step of imago-cli, run by the JDK's source launcher
 * ({@code java MakeRuntime.java LIB RUNTIME IMAGES NATIVE_ACCESS}): links the Java runtime that {@code ./imago}
 * runs on and that its AOT caches are made for ({@code target/runtime}): the modules of the jars in {@code LIB}
 * and the JDK modules they require, as the distribution's runtime (without its trimming).
 *
 * <p>Why a runtime of its own: its default class list ({@code lib/classlist}) gets the {@code java.lang.invoke}
 * forms that the file storage's downcall uses. JDK 25 regenerates an AOT cache's holder classes
 * ({@code DirectMethodHandle$Holder} and the like) from the {@code @lambda-form-invoker} lines of the runtime's
 * class list alone (a training run's own forms are not recorded), and every form missing from them is spun as a
 * class when it is first used. The JDK's list lacks ~25 of the downcall's forms: on the JDK itself, the first open
 * of every command spun ~21 classes for them (~10 ms of a ~85 ms {@code imago info}). The forms are taken from a
 * run of the info training ({@code AotTraining info IMAGES}) with {@code java.lang.invoke}'s resolution trace on.
 * The distribution's runtime gets the same lines ({@code imago-dist/src/build/make-dist.sh}). imago's own modules
 * are linked in too: a JVM that loads cached classes from jars on a module path sets up a protection domain per
 * jar (~3.5 ms for the ~20 jars of {@code info}), one that loads them from its runtime image does not.
 */
public final class MakeRuntime {
    /** A line of {@code java.lang.invoke.MethodHandle.TRACE_RESOLVE}: kind, what was resolved, and the outcome. */
    private static final Pattern TRACE = Pattern.compile("(\\[(?:LF|SPECIES)_RESOLVE\\] [^(]*[^ (]) \\([a-z]+\\)");

    private MakeRuntime() {
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length != 4) {
            System.err.println("usage: java MakeRuntime.java LIB RUNTIME IMAGES NATIVE_ACCESS");
            System.exit(2);
        }
        Path lib = Path.of(args[0]);
        Path runtime = Path.of(args[1]);
        Path images = Path.of(args[2]);
        String nativeAccess = args[3];
        deleteTree(runtime);
        // Bouncy Castle's jar in LIB is unsigned already (UnsignJars.java); jlink refuses a signed one
        run(List.of(Path.of(System.getProperty("java.home"), "bin", "jlink").toString(),
                "--module-path", lib.toString(), "--add-modules", "ALL-MODULE-PATH", "--no-header-files",
                "--no-man-pages", "--output", runtime.toString()));
        List<String> forms = forms(List.of(runtime.resolve("bin/java").toString(),
                "-Djava.lang.invoke.MethodHandle.TRACE_RESOLVE=true", nativeAccess,
                "--add-modules", "com.github.luben.zstd_jni",
                "-m", "imago.cli/imago.cli.AotTraining", "info", images.toString()));
        Files.write(runtime.resolve("lib/classlist"), forms, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        System.out.println("imago-cli: " + runtime + " (" + forms.size() + " method-handle forms of the training)");
    }

    /** The forms {@code command} resolves, as class list lines. */
    private static List<String> forms(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        Set<String> forms = new TreeSet<>();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = out.readLine()) != null;) {
                Matcher m = TRACE.matcher(line);
                if (m.matches()) {
                    forms.add("@lambda-form-invoker " + m.group(1));
                }
            }
        }
        if (p.waitFor() != 0) {
            throw new IOException("failed (status " + p.exitValue() + "): " + String.join(" ", command));
        }
        return new ArrayList<>(forms);
    }

    private static void run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IOException("failed (status " + p.exitValue() + "): " + String.join(" ", command));
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
