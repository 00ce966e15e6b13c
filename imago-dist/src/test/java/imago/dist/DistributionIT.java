package imago.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.lang.module.Configuration;
import java.lang.module.ModuleFinder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tarball as a user gets it: unpacked into a temporary directory and run on a machine without a JDK,
 * that is with {@code JAVA_HOME} unset and a {@code PATH} that holds only the few tools the launcher calls
 * (bash, readlink, dirname), so that no {@code java} can be found but the distribution's own.
 */
class DistributionIT {
    private static final int MIB = 1 << 20;

    @TempDir
    static Path dir;

    private static Path home;
    private static Path tools;
    private static Path image;

    @BeforeAll
    static void unpack() throws IOException, InterruptedException {
        Path tarball = Path.of(System.getProperty("imago.dist.tarball"));
        assertTrue(Files.isRegularFile(tarball), tarball + " was not built");
        Path unpacked = Files.createDirectories(dir.resolve("unpacked"));
        assertEquals(0, new ProcessBuilder("tar", "-xzf", tarball.toString(), "-C", unpacked.toString())
                .inheritIO().start().waitFor());
        try (var entries = Files.list(unpacked)) {
            List<Path> top = entries.toList();
            assertEquals(1, top.size(), "one top directory: " + top);
            home = top.getFirst();
        }
        tools = Files.createDirectories(dir.resolve("tools"));
        for (String tool : List.of("bash", "readlink", "dirname")) {
            Files.createSymbolicLink(tools.resolve(tool), which(tool));
        }
        // a real image: qemu-img's, with data at 1 MiB and at 40 MiB
        image = dir.resolve("disk.qcow2");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", image, "64M");
        Qemu.ok(dir, Qemu.io(), "-c", "write -q -P 0xab 1M 64k", "-c", "write -q -P 0x5c 40M 4k", image);
    }

    @AfterAll
    static void removeToolLinks() throws IOException {
        for (String tool : List.of("bash", "readlink", "dirname")) {
            Files.deleteIfExists(tools.resolve(tool)); // the links, before JUnit warns about them
        }
    }

    @Test
    void noJavaButTheDistributionsOwn() throws Exception {
        Result r = run(List.of("bash", "-c", "command -v java || echo none"));
        assertEquals("none\n", r.out());
        Result v = imago("--version").ok();
        assertTrue(v.out().startsWith("imago version "), v.out());
        assertTrue(v.out().contains("\nJava 25"), v.out());
    }

    /** LUKS2 with an Argon2id key slot: Bouncy Castle, as linked into the runtime and bound at start. */
    @Test
    void luks2WithArgon2() throws Exception {
        Path luks = dir.resolve("argon2.luks");
        Path pass = Files.writeString(dir.resolve("pass.txt"), "abc");
        String secret = "secret,id=s,file=" + pass;
        // random bytes: imago convert leaves a new image's zero runs unwritten, and LUKS reads those as noise
        byte[] data = new byte[MIB];
        new java.util.Random(7).nextBytes(data);
        Path src = Files.write(dir.resolve("luks-src.raw"), data);
        imago("convert", "--object", secret, "-O", "luks", "-o",
                "key-secret=s,luks-version=2,pbkdf=argon2id,pbkdf-memory=1024,iter-time=10", src.toString(),
                luks.toString()).ok();
        Path raw = dir.resolve("luks.raw");
        imago("convert", "--object", secret, "--image-opts", "driver=luks,key-secret=s,file.filename=" + luks, "-O",
                "raw", raw.toString()).ok();
        assertArrayEquals(data, Files.readAllBytes(raw));
        String info = imago("info", luks.toString()).ok().out();
        assertTrue(info.contains("kdf: argon2id"), info);
    }

    @Test
    void infoConvertAndCheckARealImage() throws Exception {
        String info = imago("info", image.toString()).ok().out();
        assertTrue(info.contains("file format: qcow2\n"), info);
        assertTrue(info.contains("virtual size: 64 MiB (67108864 bytes)\n"), info);
        String json = imago("info", "--output=json", image.toString()).ok().out();
        assertTrue(json.contains("\"format\": \"qcow2\""), json);

        Path raw = dir.resolve("disk.raw");
        imago("convert", "-O", "raw", image.toString(), raw.toString()).ok();
        assertArrayEquals(expectedContents(), Files.readAllBytes(raw));

        // zstd compression: the native library of zstd-jni, as linked into the runtime
        Path zstd = dir.resolve("zstd.qcow2");
        imago("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", raw.toString(), zstd.toString()).ok();
        String check = imago("check", zstd.toString()).ok().out();
        assertTrue(check.contains("No errors were found on the image."), check);
        assertEquals(0, Qemu.check(zstd, "qcow2").status());
        assertEquals(0, Qemu.compare(image, "qcow2", zstd, "qcow2").status());
        String zinfo = imago("info", zstd.toString()).ok().out();
        assertTrue(zinfo.contains("compression type: zstd"), zinfo);

        Result io = run(List.of(home.resolve("bin/imago-io").toString(), "-c", "read -P 0x5c 40M 4k", image.toString()));
        assertEquals(0, io.status(), io.err());
        assertTrue(io.out().startsWith("read 4096/4096 bytes at offset 41943040"), io.out());
    }

    @Test
    void errorsAreOneLineAndAStatus() throws Exception {
        Result r = imago("info", dir.resolve("missing.qcow2").toString());
        assertEquals(1, r.status());
        assertTrue(r.err().startsWith("imago: ") && r.err().lines().count() == 1, r.err());
        assertEquals("", r.out());
    }

    @Test
    void theAheadOfTimeCacheFitsTheUnpackedRuntime() throws Exception {
        // AOTMode=on turns a cache the JVM cannot use into an error, where bin/imago would just start slower
        Result r = run(List.of(home.resolve("bin/imago").toString(), "info", image.toString()),
                Map.of("JDK_JAVA_OPTIONS", "-XX:AOTMode=on"));
        assertEquals(0, r.status(), r.err());
    }

    @Test
    void theFirstOpenSpinsNoDirectMethodHandleForms() throws Exception {
        // make-dist.sh adds the java.lang.invoke forms of the file storage's downcall to the runtime's class list,
        // so the cache's holder classes have them: a form the JVM had to spin is a class defined outside the cache
        Result r = run(List.of(home.resolve("bin/imago").toString(), "info", "--output=json", image.toString()),
                Map.of("JDK_JAVA_OPTIONS", "-Xlog:class+load"));
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains(" imago.storage.file.internal.LibC source: shared objects file"), r.out());
        List<String> spun = r.out().lines()
                .filter(l -> l.contains("LambdaForm$DMH") || l.contains("BoundMethodHandle$Species_"))
                .filter(l -> !l.contains("source: shared objects file")).toList();
        assertEquals(List.of(), spun);
    }

    @Test
    void manPagesCompletionLicencesAndReadme() throws Exception {
        for (String page : List.of("imago.1", "imago-info.1", "imago-convert.1", "imago-check.1", "imago-map.1")) {
            String text = Files.readString(home.resolve("share/man/man1").resolve(page));
            assertTrue(text.startsWith(".TH IMAGO"), page);
            assertTrue(text.contains(".SH SYNOPSIS"), page);
        }
        Result completion = run(List.of("bash", "-c",
                ". " + home.resolve("share/bash-completion/completions/imago") + " && complete -p imago"));
        assertEquals("complete -o default -F _complete_imago imago\n", completion.out(), completion.err());
        for (String licence : List.of("THIRD-PARTY.txt", "picocli-LICENSE.txt", "slf4j-LICENSE.txt",
                "zstd-jni-LICENSE.txt", "bouncycastle-LICENSE.txt")) {
            assertTrue(Files.size(home.resolve("licenses").resolve(licence)) > 500, licence);
        }
        assertTrue(Files.readString(home.resolve("LICENSE")).contains("Apache License\n                           Version 2.0"),
                "imago's own licence");
        assertTrue(Files.isDirectory(home.resolve("runtime/legal/java.base")));
        String readme = Files.readString(home.resolve("README.md"));
        assertTrue(readme.startsWith("# imago " + home.getFileName().toString().substring("imago-".length())), readme);
        assertFalse(readme.contains("${"), readme);
    }

    @Test
    void theRuntimeHoldsOnlyWhatImagoNeeds() throws Exception {
        Result r = run(List.of(home.resolve("runtime/bin/java").toString(), "--list-modules"));
        Set<String> modules = r.out().lines().map(m -> m.replaceFirst("@.*", "")).collect(Collectors.toSet());
        // the jars imago-cli runs with (its run-time dependencies) and the JDK modules they require, resolved
        // as jlink resolves them (no service binding): no java.logging, no java.sql
        ModuleFinder jars = ModuleFinder.of(Path.of(System.getProperty("imago.dist.modules")));
        Set<String> roots = jars.findAll().stream().map(m -> m.descriptor().name()).collect(Collectors.toSet());
        Set<String> expected = new TreeSet<>();
        Configuration.empty().resolve(ModuleFinder.compose(jars, ModuleFinder.ofSystem()), ModuleFinder.of(), roots)
                .modules().forEach(m -> expected.add(m.name()));
        assertEquals(expected, new TreeSet<>(modules));
        // imago itself needs no java.logging and no java.sql: only Bouncy Castle (Argon2 for LUKS2) requires them,
        // with java.naming
        roots.remove("org.bouncycastle.provider");
        Set<String> withoutBouncyCastle = new TreeSet<>();
        Configuration.empty().resolve(ModuleFinder.compose(jars, ModuleFinder.ofSystem()), ModuleFinder.of(), roots)
                .modules().forEach(m -> withoutBouncyCastle.add(m.name()));
        assertFalse(withoutBouncyCastle.contains("java.logging") || withoutBouncyCastle.contains("java.sql"),
                withoutBouncyCastle.toString());
        for (String m : List.of("imago.cli", "imago.qcow2", "imago.vmdk", "imago.storage.file", "com.github.luben.zstd_jni",
                "org.slf4j.simple", "org.bouncycastle.provider")) {
            assertTrue(modules.contains(m), m);
        }
    }

    private static byte[] expectedContents() {
        byte[] b = new byte[64 * MIB];
        Arrays.fill(b, MIB, MIB + 65536, (byte) 0xab);
        Arrays.fill(b, 40 * MIB, 40 * MIB + 4096, (byte) 0x5c);
        return b;
    }

    private static Result imago(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/imago").toString());
        cmd.addAll(List.of(args));
        return run(cmd);
    }

    private static Result run(List<String> command) throws IOException, InterruptedException {
        return run(command, Map.of());
    }

    /** Runs {@code command} with JAVA_HOME unset and PATH holding only {@link #tools}. */
    private static Result run(List<String> command, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        pb.environment().remove("JAVA_HOME");
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().put("PATH", tools.toString());
        pb.environment().putAll(env);
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE)
                .start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(2, TimeUnit.MINUTES), "timed out: " + command);
        return new Result(command, p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static Path which(String tool) {
        for (String d : System.getenv("PATH").split(":")) {
            Path p = Path.of(d, tool);
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        throw new AssertionError(tool + " is not on PATH");
    }

    private record Result(List<String> command, int status, String out, String err) {
        Result ok() {
            assertEquals(0, status, () -> command + " failed:\n" + out + err);
            return this;
        }
    }
}
