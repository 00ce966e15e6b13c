package imago.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the real {@code ./imago} launcher (after {@code package} has filled {@code imago-cli/target/lib})
 * from another directory, with relative file names, as a user would.
 */
class LauncherIT {
    private static Path base;
    private static Path launcher;

    @TempDir
    Path dir;

    @BeforeAll
    static void findLauncher() {
        base = Launcher.checkout();
        launcher = Launcher.find();
    }

    private Qemu.Output imago(Object... args) {
        Object[] cmd = new Object[args.length + 1];
        cmd[0] = launcher;
        System.arraycopy(args, 0, cmd, 1, args.length);
        return Qemu.run(dir, cmd);
    }

    @Test
    void theDoneCriterionSequenceWorks() {
        Qemu.Output create = imago("create", "-f", "raw", "x.img", "64M");
        assertEquals(0, create.status(), create.err());
        assertEquals("Formatting 'x.img', fmt=raw size=67108864\n", create.out());
        Qemu.Output write = imago("io", "-c", "write -P 0xab 1M 64k", "x.img");
        assertEquals(0, write.status(), write.err());
        assertTrue(write.out().startsWith("wrote 65536/65536 bytes at offset 1048576\n64 KiB, 1 ops; "), write.out());
        Qemu.Output read = imago("io", "-c", "read -P 0xab 1M 64k", "x.img");
        assertEquals(0, read.status(), read.err());
        assertTrue(read.out().startsWith("read 65536/65536 bytes at offset 1048576\n"), read.out());
        Qemu.Output info = imago("info", "--output=json", "x.img");
        assertEquals(0, info.status(), info.err());
        assertTrue(info.out().startsWith("{\n    \"virtual-size\": 67108864,\n    \"filename\": \"x.img\",\n"), info.out());
        // the library's own logging reaches stderr through slf4j-simple, not slf4j's "no providers" notice
        assertTrue(!info.err().contains("SLF4J"), info.err());

        Qemu.Output qemu = Qemu.run(dir, Qemu.img(), "info", "--output=json", "x.img");
        assertEquals(qemu.out(), info.out());
    }

    @Test
    void messagesStartWithTheNameItWasInvokedBy() throws IOException {
        // a qemu-img symlink to the launcher, as scripts written for qemu-img find it on PATH
        Path link = Files.createSymbolicLink(dir.resolve("qemu-img"), launcher);
        Qemu.Output asQemuImg = Qemu.run(dir, link, "dd", "bs=0", "if=a", "of=b");
        Qemu.Output reference = Qemu.run(dir, Qemu.img(), "dd", "bs=0", "if=a", "of=b");
        assertEquals(reference.status(), asQemuImg.status());
        assertEquals(reference.err(), asQemuImg.err());
        Qemu.Output unknown = Qemu.run(dir, link, "convert", "-m", "0", "a", "b");
        assertEquals("qemu-img: Invalid number of coroutines. Allowed number of coroutines is between 1 and 16\n",
                unknown.err());
        assertEquals("imago: Invalid number of coroutines. Allowed number of coroutines is between 1 and 16\n",
                imago("convert", "-m", "0", "a", "b").err());
    }

    @Test
    void failuresGetQemuImgsLinesAndStatusOne() {
        Qemu.Output missing = imago("info", "nofile.img");
        assertEquals(1, missing.status());
        assertEquals("imago: Could not open 'nofile.img': Could not open 'nofile.img': No such file or directory\n",
                missing.err());
        assertEquals("", missing.out());
        // qemu-img 7.2's getopt reads a negative size after the file name as an option: its two lines
        Qemu.Output bad = imago("create", "-f", "raw", "y.img", "-5");
        assertEquals(1, bad.status());
        assertEquals("imago: unrecognized option '-5'\nTry 'imago --help' for more information\n", bad.err());
        Qemu.Output version = imago("--version");
        assertEquals(0, version.status(), version.err());
        assertTrue(version.out().matches("(?s)imago version \\d+\\.\\d+\\.\\d+.*"), version.out());
    }

    @Test
    void convertsWithRelativeNames() {
        assertEquals(0, imago("create", "-q", "-f", "raw", "a.img", "8M").status());
        assertEquals(0, imago("io", "-f", "raw", "-c", "write -q -P 0x3c 2M 1M", "a.img").status());
        Qemu.Output convert = imago("convert", "-p", "-O", "raw", "a.img", "b.img");
        assertEquals(0, convert.status(), convert.err());
        assertTrue(convert.out().endsWith("    (100.00/100%)\r\n"), convert.out());
        Qemu.Output check = imago("io", "-r", "-c", "read -P 0x3c 2M 1M", "-c", "read -P 0 0 2M", "b.img");
        assertEquals(0, check.status(), check.out());
    }

    @Test
    void compareExitsWithQemuImgsStatuses() {
        assertEquals(0, imago("create", "-q", "-f", "raw", "a.img", "8M").status());
        assertEquals(0, imago("create", "-q", "-f", "raw", "b.img", "8M").status());
        Qemu.Output same = imago("compare", "a.img", "b.img");
        assertEquals(0, same.status(), same.err());
        assertEquals("Images are identical.\n", same.out());
        assertEquals(0, imago("io", "-f", "raw", "-c", "write -q -P 1 4k 512", "b.img").status());
        Qemu.Output differ = imago("compare", "a.img", "b.img");
        assertEquals(1, differ.status(), differ.err());
        assertEquals("Content mismatch at offset 4096!\n", differ.out());
        Qemu.Output missing = imago("compare", "a.img", "nofile.img");
        assertEquals(2, missing.status());
        assertEquals("imago: Could not open 'nofile.img': Could not open 'nofile.img': No such file or directory\n",
                missing.err());
        Qemu.Output map = imago("map", "b.img");
        assertEquals(0, map.status(), map.err());
        assertEquals("Offset          Length          Mapped to       File\n"
                + "0               0x2000          0               b.img\n", map.out());
    }

    @Test
    void nbdStopsCleanlyOnSigterm() throws Exception {
        Qemu.tool("nbdinfo");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "n.qcow2", "4M");
        Qemu.ok(dir, Qemu.img(), "bitmap", "--add", "n.qcow2", "bm");
        Path sock = dir.resolve("n.sock");
        Path pid = dir.resolve("n.pid");
        Process server = new ProcessBuilder(launcher.toString(), "nbd", "-t", "-k", sock.toString(), "--pid-file",
                pid.toString(), "n.qcow2").directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("nbd.log").toFile()).start();
        try {
            for (int i = 0; i < 3000 && !Files.exists(sock) && server.isAlive(); i++) {
                Thread.sleep(10);
            }
            assertTrue(Files.exists(sock), () -> "no socket; " + read(dir.resolve("nbd.log")));
            assertEquals(server.pid() + "\n", Files.readString(pid));
            Qemu.ok(dir, Qemu.io(), "-f", "raw", "-c", "write -P 7 64k 4k", "nbd+unix:///?socket=" + sock);
            // the bitmap is in use while the image is open for writing
            assertTrue(Qemu.ok(dir, Qemu.img(), "info", "-U", "n.qcow2").contains("in-use"));
        } finally {
            server.destroy(); // SIGTERM, as a service manager stops qemu-nbd
            assertTrue(server.waitFor(30, java.util.concurrent.TimeUnit.SECONDS));
        }
        assertTrue(!Files.exists(sock) && !Files.exists(pid), "socket and pid file removed");
        String info = Qemu.ok(dir, Qemu.img(), "info", "n.qcow2");
        assertTrue(!info.contains("in-use"), info);
        assertEquals("", Qemu.ok(dir, Qemu.img(), "check", "-q", "n.qcow2"));
        assertTrue(Qemu.ok(dir, Qemu.io(), "-c", "read -P 7 64k 4k", "n.qcow2").contains("read 4096/4096"));
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    @Test
    void theBuildsAotCachesFitTheLaunchersJvm() {
        for (String name : List.of("imago.aot", "imago-info.aot")) {
            // -XX:AOTMode=on makes the JVM fail instead of ignoring a cache it cannot use
            Path cache = base.resolve("imago-cli/target/" + name);
            assertTrue(Files.isRegularFile(cache), "no AOT cache at " + cache);
            Qemu.Output version = Qemu.run(dir, base.resolve("imago-cli/target/runtime/bin/java"),
                    "-XX:AOTCache=" + cache, "-XX:AOTMode=on",
                    "--enable-native-access=imago.storage.file,com.github.luben.zstd_jni",
                    "--add-modules", "com.github.luben.zstd_jni",
                    "-m", "imago.cli/imago.cli.Main", "--version");
            assertEquals(0, version.status(), name + ": " + version.err());
            assertEquals("", version.err(), name);
        }
    }

    @Test
    void theInfoCacheHoldsNeitherImageWritesNorSignatureChecks() throws IOException {
        // the JVM loads every class of its cache at start, so the class loading log of --version lists the cache
        Path cache = base.resolve("imago-cli/target/imago-info.aot");
        Qemu.Output loaded = Qemu.run(dir, base.resolve("imago-cli/target/runtime/bin/java"),
                "-XX:AOTCache=" + cache, "-XX:AOTMode=on", "-Xlog:class+load",
                "--enable-native-access=imago.storage.file,com.github.luben.zstd_jni",
                "--add-modules", "com.github.luben.zstd_jni",
                "-m", "imago.cli/imago.cli.Main", "--version");
        assertEquals(0, loaded.status(), loaded.err());
        assertTrue(loaded.out().contains(" imago.cli.info.InfoReport source: shared objects file"), loaded.out());
        assertTrue(loaded.out().contains(" imago.qcow2.internal.Qcow2Reader source: shared objects file")
                || loaded.out().contains(" imago.qcow2.internal.Qcow2Instance source: shared objects file"),
                "the qcow2 read path is in the cache");
        // the training's image writes happen in a JVM of their own; a signed jar's check loads PKCS#7 and X.509
        for (String absent : List.of("imago.qcow2.internal.Qcow2Create", "java.util.jar.JarVerifier",
                "sun.security.pkcs.PKCS7", "java.security.SecureRandom")) {
            assertTrue(!loaded.out().contains(" " + absent + " "), absent + " is in the info cache");
        }
        // Bouncy Castle's jar (the only signed one) is on the module path without its signature
        try (Stream<Path> jars = Files.list(base.resolve("imago-cli/target/lib"))) {
            for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).toList()) {
                try (java.util.jar.JarFile file = new java.util.jar.JarFile(jar.toFile())) {
                    assertTrue(file.stream().noneMatch(e -> e.getName().matches("(?i)META-INF/[^/]+\\.(SF|RSA|DSA|EC)")),
                            jar + " is signed");
                }
            }
        }
    }

    @Test
    void theFirstOpenSpinsNoDirectMethodHandleForms() {
        // the build's runtime has the java.lang.invoke forms of the file storage's downcall in its class list
        // (src/build/MakeRuntime.java), so the cache's holder classes have them: a form the JVM had to spin is a
        // class defined outside the cache
        assertEquals(0, imago("create", "-q", "-f", "qcow2", "a.qcow2", "1M").status());
        Qemu.Output loaded = Qemu.run(dir, base.resolve("imago-cli/target/runtime/bin/java"),
                "-XX:AOTCache=" + base.resolve("imago-cli/target/imago-info.aot"), "-XX:AOTMode=on", "-Xlog:class+load",
                "--enable-native-access=imago.storage.file,com.github.luben.zstd_jni",
                "--add-modules", "com.github.luben.zstd_jni",
                "-m", "imago.cli/imago.cli.Main", "info", "--output=json", "a.qcow2");
        assertEquals(0, loaded.status(), loaded.err());
        assertTrue(loaded.out().contains(" imago.storage.file.internal.LibC source: shared objects file"), loaded.out());
        List<String> spun = loaded.out().lines()
                .filter(l -> l.contains("LambdaForm$DMH") || l.contains("BoundMethodHandle$Species_"))
                .filter(l -> !l.contains("source: shared objects file")).toList();
        assertEquals(List.of(), spun);
    }

    @Test
    void aStaleOrBrokenAotCacheIsIgnoredSilently() throws IOException {
        // a checkout of its own: the launcher and a copy of the module path, one jar newer than the cache
        Path root = dir.resolve("checkout");
        Files.createDirectories(root.resolve("scripts"));
        Files.copy(launcher, root.resolve("imago"));
        Files.copy(base.resolve("scripts/java-env.sh"), root.resolve("scripts/java-env.sh"));
        Path lib = root.resolve("imago-cli/target/lib");
        Files.createDirectories(lib);
        try (Stream<Path> jars = Files.list(base.resolve("imago-cli/target/lib"))) {
            for (Path jar : jars.toList()) {
                Files.copy(jar, lib.resolve(jar.getFileName()));
            }
        }
        try (Stream<Path> jars = Files.list(lib)) {
            Path newer = jars.filter(p -> p.toString().endsWith(".jar")).findFirst().orElseThrow();
            Files.setLastModifiedTime(newer, FileTime.from(Instant.now().plusSeconds(60)));
        }
        assertEquals(0, imago("create", "-q", "-f", "qcow2", "a.qcow2", "1M").status());
        // info starts from imago-info.aot, check from imago.aot
        for (String name : List.of("imago-info.aot", "imago.aot")) {
            Path cache = root.resolve("imago-cli/target/" + name);
            byte[] real = Files.readAllBytes(base.resolve("imago-cli/target/" + name));
            List<byte[]> caches = List.of(real, Arrays.copyOf(real, 1 << 20), new byte[0],
                    "not a cache".getBytes(StandardCharsets.US_ASCII));
            for (byte[] content : caches) {
                Files.write(cache, content);
                Qemu.Output info = Qemu.run(dir, root.resolve("imago"), "info", "--output=json", "a.qcow2");
                assertEquals(0, info.status(), info.err());
                assertEquals("", info.err(), name + ": a cache of " + content.length + " bytes");
                assertTrue(info.out().startsWith("{\n    \"virtual-size\": 1048576,"), info.out());
                Qemu.Output check = Qemu.run(dir, root.resolve("imago"), "check", "a.qcow2");
                assertEquals(0, check.status(), check.err());
                assertEquals("", check.err(), name + ": a cache of " + content.length + " bytes");
                assertTrue(check.out().contains("No errors were found on the image."), check.out());
            }
        }
    }

    @Test
    void nbdForkReturnsOnceTheServerListens() throws Exception {
        Qemu.tool("nbdinfo");
        assertEquals(0, imago("create", "-q", "-f", "qcow2", "f.qcow2", "4M").status());
        Path socket = dir.resolve("f.sock");
        Path pid = dir.resolve("f.pid");
        Qemu.Output r = imago("nbd", "--fork", "-t", "-k", socket, "--pid-file", pid, "f.qcow2");
        assertEquals(0, r.status(), r.err());
        assertEquals("", r.out() + r.err());
        // listening when the command returned: a client connects at once
        assertTrue(Qemu.ok(dir, "nbdinfo", "nbd+unix:///?socket=" + socket).contains("export-size: 4194304"));
        ProcessHandle server = ProcessHandle.of(Long.parseLong(Files.readString(pid).strip())).orElseThrow();
        assertTrue(server.isAlive());
        server.destroy();
        server.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
        assertTrue(!Files.exists(socket) && !Files.exists(pid), "the server removed its socket and pid file");
        // a server that fails before it listens says why, through the command that waited for it
        Qemu.Output bad = imago("nbd", "--fork", "-k", socket, "nofile.qcow2");
        Qemu.Output inForeground = imago("nbd", "-k", socket, "nofile.qcow2");
        assertEquals(1, bad.status());
        assertTrue(bad.err().contains("Could not open 'nofile.qcow2'"), bad.err());
        assertEquals(inForeground.err(), bad.err());
    }
}
