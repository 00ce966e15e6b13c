package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A user links only the modules they need: the raw format, file storage, the probe and the CLI, and
 * nothing else of imago. The linked image runs {@code imago info} on a raw file.
 */
class JlinkTest {
    /** What is linked: the CLI and the plug-ins it is to find, plus their third-party dependencies. */
    static final Set<String> LINKED = Set.of("imago.api", "imago.storage.file", "imago.raw", "imago.probe",
            "imago.nbd", "imago.cli", "info.picocli", "org.slf4j", "org.slf4j.simple");

    @TempDir
    Path dir;

    @Test
    void aLinkedImageWithOnlyRawAndFileStorageRunsTheCli() throws Exception {
        Path image = dir.resolve("image");
        String modulePath = LINKED.stream().map(ModuleJars::path).map(Path::toString)
                .collect(Collectors.joining(java.io.File.pathSeparator));
        // service providers are not required by anyone: they are linked because they are named
        jlink("--module-path", modulePath,
                "--add-modules", "imago.cli,imago.storage.file,imago.raw,org.slf4j.simple",
                "--no-header-files", "--no-man-pages", "--strip-debug",
                "--output", image.toString());

        Set<String> modules = linkedModules(image);
        Set<String> nonJdk = modules.stream().filter(m -> !m.startsWith("java.") && !m.startsWith("jdk."))
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(LINKED), nonJdk, "linked modules: " + modules);

        Path disk = dir.resolve("disk.raw");
        try (var f = java.nio.channels.FileChannel.open(disk, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            f.truncate(0);
            f.write(java.nio.ByteBuffer.wrap(new byte[] {1}), (3 << 20) - 1); // 3 MiB, sparse
        }
        String json = runImage(image, "info", "--output=json", disk.toString());
        assertEquals("raw", field(json, "format"), json);
        assertEquals(Long.toString(3 << 20), field(json, "virtual-size"), json);
    }

    private static Set<String> linkedModules(Path image) throws IOException {
        Properties release = new Properties();
        try (var in = Files.newInputStream(image.resolve("release"))) {
            release.load(in);
        }
        String list = release.getProperty("MODULES", "").replace("\"", "").strip();
        return new TreeSet<>(Arrays.asList(list.split("\\s+")));
    }

    /** A top-level JSON field's value: a string without its quotes, or a number. */
    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|-?[0-9]+)")
                .matcher(json);
        if (!m.find()) {
            throw new AssertionError("no \"" + name + "\" in " + json);
        }
        return m.group(2) != null ? m.group(2) : m.group(1);
    }

    /**
     * Runs the JDK's jlink in its own process. Not through {@code ToolProvider.findFirst("jlink")} in
     * this JVM: a JDK without {@code jmods} (such as Temurin 25) links from its own run-time image
     * (JEP 493), which jlink refuses to do in a JVM started with {@code --patch-module}, and that is
     * how surefire runs the tests of a module.
     */
    private void jlink(String... args) throws IOException, InterruptedException {
        Path jlink = Path.of(System.getProperty("java.home"), "bin", "jlink");
        assertTrue(Files.isExecutable(jlink), "this JDK has no jlink: " + jlink);
        List<String> cmd = new ArrayList<>(List.of(jlink.toString()));
        cmd.addAll(List.of(args));
        Path log = dir.resolve("jlink.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            p.getOutputStream().close();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "jlink did not finish in 60 s");
        } finally {
            p.destroyForcibly();
        }
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + " failed:\n" + Files.readString(log));
    }

    private String runImage(Path image, String... cliArgs) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(image.resolve("bin").resolve("java").toString(),
                "--enable-native-access=imago.storage.file", "-m", "imago.cli/imago.cli.Main"));
        cmd.addAll(List.of(cliArgs));
        Path stdoutFile = dir.resolve("stdout.txt");
        Path stderrFile = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(stdoutFile.toFile()).redirectError(stderrFile.toFile())
                .start();
        try {
            p.getOutputStream().close();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the linked CLI did not finish in 30 s");
        } finally {
            p.destroyForcibly();
        }
        String stdout = Files.readString(stdoutFile);
        String stderr = Files.readString(stderrFile);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + "\nstdout:\n" + stdout + "\nstderr:\n" + stderr);
        assertTrue(!stderr.contains("WARNING"), "warnings from the linked CLI:\n" + stderr);
        return stdout;
    }
}
