package imago.moduletests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.testkit.Qemu;
import java.io.IOException;
import java.io.InputStream;
import java.lang.module.Configuration;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleReader;
import java.lang.module.ModuleReference;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Plug-ins found the JPMS way: a module layer built here from the module jars, with service binding,
 * the way a plug-in host (or {@code java --module-path}) does it. The layer holds its own copy of
 * every module, so this test does not depend on how surefire laid out this JVM (module path or class
 * path); the test talks to the layer's classes by reflection because they are not this JVM's.
 */
class ModuleLayerTest {
    static final String SPI = "imago.api.spi.";
    static final Set<String> PROVIDER_MODULES = Set.of("imago.storage.file", "imago.storage.memory", "imago.raw",
            "imago.qcow2", "imago.cow", "imago.vmdk", "imago.vpc", "imago.bochs", "imago.cloop", "imago.dmg",
            "imago.qed", "imago.qcow", "imago.luks", "imago.vhdx", "imago.vdi", "imago.parallels", "imago.moduletests");

    static ModuleLayer layer;

    @TempDir
    Path dir;

    /** Resolves from imago.probe alone: service binding must pull in every provider module. */
    @BeforeAll
    @SuppressWarnings("restricted") // enableNativeAccess: granted to the file storage, as the JVM's own flag does
    static void buildLayer() {
        Set<String> names = new TreeSet<>(ModuleJars.IMAGO);
        names.addAll(ModuleJars.THIRD_PARTY);
        names.remove("imago.cli"); // not a plug-in; the jlink test covers it
        names.remove("imago.testkit"); // test support, not part of a deployment
        names.remove("info.picocli");
        Configuration cf = ModuleLayer.boot().configuration()
                .resolveAndBind(ModuleJars.finder(names), java.lang.module.ModuleFinder.of(), Set.of("imago.probe"));
        ModuleLayer.Controller controller = ModuleLayer.defineModulesWithOneLoader(cf,
                List.of(ModuleLayer.boot()), ClassLoader.getPlatformClassLoader());
        layer = controller.layer();
        // the layer's file storage calls fallocate and lseek through FFM, as --enable-native-access allows
        controller.enableNativeAccess(layer.findModule("imago.storage.file").orElseThrow());
    }

    @Test
    void serviceBindingResolvesEveryProviderModule() {
        Set<String> resolved = layer.modules().stream().map(Module::getName).collect(Collectors.toSet());
        for (String m : PROVIDER_MODULES) {
            assertTrue(resolved.contains(m), m + " was not bound as a provider; resolved: " + new TreeSet<>(resolved));
        }
        // the layer's modules are its own, not this JVM's
        assertTrue(layer.findModule("imago.api").orElseThrow() != Object.class.getModule());
        assertEquals(layer, layer.findModule("imago.api").orElseThrow().getLayer());
    }

    @Test
    void everyFormatDriverIsFoundInTheLayer() throws Exception {
        Map<String, String> drivers = providers("FormatDriver", "name");
        assertEquals(Map.ofEntries(Map.entry("raw", "imago.raw"), Map.entry("qcow2", "imago.qcow2"),
                Map.entry("cow", "imago.cow"), Map.entry("vmdk", "imago.vmdk"), Map.entry("vpc", "imago.vpc"),
                Map.entry("bochs", "imago.bochs"), Map.entry("cloop", "imago.cloop"), Map.entry("dmg", "imago.dmg"),
                Map.entry("qed", "imago.qed"), Map.entry("qcow", "imago.qcow"), Map.entry("luks", "imago.luks"),
                Map.entry("vhdx", "imago.vhdx"), Map.entry("vdi", "imago.vdi"),
                Map.entry("parallels", "imago.parallels"), Map.entry("imagotst", "imago.moduletests")), drivers);
    }

    @Test
    void everyStorageProviderIsFoundInTheLayer() throws Exception {
        Map<String, String> storages = providers("StorageProvider", "scheme");
        // imago.nbd is in the layer (imago.cli requires it) and provides the nbd scheme: NBD exports as storage
        assertEquals(Map.of("file", "imago.storage.file", "memory", "imago.storage.memory", "nbd", "imago.nbd"),
                storages);
    }

    /**
     * The layer's own imago.probe opens images with the layer's plug-ins through
     * {@code Imago.opener(ModuleLayer)}, as a plug-in host would: a probed raw file and the
     * third-party format.
     */
    @Test
    void theLayersProbeOpensImagesWithTheLayersDrivers() throws Exception {
        Path raw = Files.write(dir.resolve("disk.raw"), new byte[4096]);
        assertEquals("raw", openAndGetFormat(raw));
        Path tst = dir.resolve("disk.tst");
        byte[] image = new byte[512 + 1024];
        System.arraycopy("IMAGOTST".getBytes(StandardCharsets.US_ASCII), 0, image, 0, 8);
        image[8 + 6] = 0x04; // size 1024, big-endian
        image[16 + 3] = 1; // version 1
        Files.write(tst, image);
        assertEquals("imagotst", openAndGetFormat(tst));
    }

    /**
     * The layer has no zstd-jni (imago.qcow2 requires it statically): zlib-compressed qcow2 images read,
     * and a zstd-compressed one fails with a clear UnsupportedFeatureException, not a linkage error.
     */
    @Test
    void withoutZstdJniOnlyZstdImagesFailAndTheySaySo() throws Exception {
        assertTrue(layer.findModule("com.github.luben.zstd_jni").isEmpty(), "the layer must not have zstd-jni");
        byte[] data = new byte[256 * 1024];
        java.util.Arrays.fill(data, (byte) 0x5a);
        Files.write(dir.resolve("src.raw"), data);
        Path qemuImg = Qemu.img();
        for (String type : List.of("zlib", "zstd")) {
            Qemu.ok(dir, qemuImg, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=" + type,
                    "src.raw", type + ".qcow2");
        }
        assertEquals(0x5a, readFirstByte(dir.resolve("zlib.qcow2")));
        Exception e = assertThrows(Exception.class, () -> readFirstByte(dir.resolve("zstd.qcow2")));
        assertEquals("imago.api.UnsupportedFeatureException", e.getClass().getName(), e.toString());
        assertTrue(e.getMessage().contains("zstd support is not installed"), e.getMessage());
    }

    /**
     * The layer has no Bouncy Castle (imago.luks requires it statically, for Argon2): a LUKS2 container whose key
     * slot uses PBKDF2 opens and reads, and one whose slot uses Argon2id fails with a clear
     * UnsupportedFeatureException naming the missing library, not a linkage error.
     */
    @Test
    void withoutBouncyCastleOnlyArgon2SlotsFailAndTheySaySo() throws Exception {
        assertTrue(layer.findModule("org.bouncycastle.provider").isEmpty(), "the layer must not have Bouncy Castle");
        Path key = Files.writeString(dir.resolve("key"), "abc");
        Map<String, List<String>> kdfs = Map.of("pbkdf2", List.of("--pbkdf-force-iterations", "1000"),
                "argon2id", List.of("--pbkdf-memory", "64", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1"));
        for (Map.Entry<String, List<String>> kdf : kdfs.entrySet()) {
            Path f = dir.resolve(kdf.getKey() + ".luks");
            try (var raf = new java.io.RandomAccessFile(f.toFile(), "rw")) {
                raf.setLength(172_032);
            }
            List<Object> cmd = new ArrayList<>(List.of(Qemu.tool("cryptsetup"), "luksFormat", "--type",
                    "luks2", "--batch-mode", "--key-file", key, "--key-size", "256", "--luks2-keyslots-size", "131072",
                    "--offset", "320", "--pbkdf", kdf.getKey()));
            cmd.addAll(kdf.getValue());
            cmd.add(f);
            Qemu.ok(dir, cmd.toArray());
        }
        Map<String, String> unlock = Map.of("key-secret", "sec0");
        readFirstByte(dir.resolve("pbkdf2.luks"), unlock);
        Exception e = assertThrows(Exception.class, () -> readFirstByte(dir.resolve("argon2id.luks"), unlock));
        assertEquals("imago.api.UnsupportedFeatureException", e.getClass().getName(), e.toString());
        assertTrue(e.getMessage().contains("key slot 0 uses Argon2, which needs Bouncy Castle"), e.getMessage());
    }

    private int readFirstByte(Path path) throws Exception {
        return readFirstByte(layer, path, Map.of());
    }

    /** The first byte of the image at {@code path} opened with {@code options} and the secret sec0 = abc. */
    private int readFirstByte(Path path, Map<String, String> options) throws Exception {
        return readFirstByte(layer, path, options);
    }

    private static int readFirstByte(ModuleLayer layer, Path path) throws Exception {
        return readFirstByte(layer, path, Map.of());
    }

    private static int readFirstByte(ModuleLayer layer, Path path, Map<String, String> options) throws Exception {
        Class<?> imago = layer.findLoader("imago.probe").loadClass("imago.probe.Imago");
        Object opener = imago.getMethod("opener", ModuleLayer.class).invoke(null, layer);
        opener = opener.getClass().getMethod("path", Path.class).invoke(opener, path);
        for (Map.Entry<String, String> o : options.entrySet()) {
            opener = opener.getClass().getMethod("option", String.class, String.class).invoke(opener, o.getKey(),
                    o.getValue());
        }
        if (!options.isEmpty()) {
            opener = opener.getClass().getMethod("secret", String.class, byte[].class).invoke(opener, "sec0",
                    "abc".getBytes(StandardCharsets.UTF_8));
        }
        Object image = invoke(opener, opener.getClass().getMethod("open"));
        Class<?> imageType = layer.findLoader("imago.api").loadClass("imago.api.Image");
        try {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4096);
            try {
                imageType.getMethod("read", java.nio.ByteBuffer.class, long.class).invoke(image, b, 0L);
            } catch (InvocationTargetException x) {
                throw x.getCause() instanceof Exception c ? c : x;
            }
            return b.get(0) & 0xff;
        } finally {
            imageType.getMethod("close").invoke(image);
        }
    }

    /**
     * imago.qcow2 finds the LUKS code of an encrypted image through the EncryptionFormat service in its own layer:
     * with imago.luks there, a qcow2 image with encrypt.format=luks opens (and, without its secret, refuses to read
     * with QEMU's words); in a layer without imago.luks, it fails with one UnsupportedFeatureException naming the
     * module, and unencrypted qcow2 images are not affected.
     */
    @SuppressWarnings("restricted") // as in buildLayer
    private static void enableNativeAccess(ModuleLayer.Controller controller, ModuleLayer in) {
        controller.enableNativeAccess(in.findModule("imago.storage.file").orElseThrow());
    }

    @Test
    void encryptedQcow2NeedsTheLuksModuleAndSaysSo() throws Exception {
        Path f = dir.resolve("enc.qcow2");
        Qemu.okDerivingKey(dir, Qemu.img(), "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=abc", "-o",
                "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", f, "1M");
        Exception locked = assertThrows(Exception.class, () -> readFirstByte(f));
        assertTrue(locked.getMessage().contains("Parameter 'encrypt.key-secret' is required for cipher"),
                locked.toString());
        Configuration cf = ModuleLayer.boot().configuration().resolve(ModuleJars.finder(Set.of("imago.api",
                "imago.probe", "imago.qcow2", "imago.storage.file", "org.slf4j")), java.lang.module.ModuleFinder.of(),
                Set.of("imago.probe", "imago.qcow2", "imago.storage.file"));
        ModuleLayer.Controller controller = ModuleLayer.defineModulesWithOneLoader(cf, List.of(ModuleLayer.boot()),
                ClassLoader.getPlatformClassLoader());
        ModuleLayer noLuks = controller.layer();
        enableNativeAccess(controller, noLuks);
        assertTrue(noLuks.findModule("imago.luks").isEmpty());
        Exception e = assertThrows(Exception.class, () -> readFirstByte(noLuks, f));
        assertEquals("imago.api.UnsupportedFeatureException", e.getClass().getName(), e.toString());
        assertTrue(e.getMessage().contains("no module providing it (imago.luks) is installed"), e.getMessage());
        Path plain = dir.resolve("plain.qcow2");
        Qemu.ok(dir, Qemu.img(), "create", "-q", "-f", "qcow2", plain, "1M");
        assertEquals(0, readFirstByte(noLuks, plain));
    }

    private String openAndGetFormat(Path path) throws Exception {
        Class<?> imago = layer.findLoader("imago.probe").loadClass("imago.probe.Imago");
        Object opener = imago.getMethod("opener", ModuleLayer.class).invoke(null, layer);
        opener = opener.getClass().getMethod("path", Path.class).invoke(opener, path);
        Object image = invoke(opener, opener.getClass().getMethod("open"));
        Class<?> imageType = layer.findLoader("imago.api").loadClass("imago.api.Image");
        try {
            return (String) imageType.getMethod("format").invoke(image);
        } finally {
            imageType.getMethod("close").invoke(image);
        }
    }

    private static Object invoke(Object target, Method m) throws Exception {
        try {
            return m.invoke(target);
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof Exception x ? x : e;
        }
    }

    /**
     * The providers of {@code imago.api.spi.<service>} in the layer, by the name {@code nameMethod}
     * returns, with the module each comes from. This module declares that it uses the layer's SPI type
     * at run time, as the type is not this JVM's. It does not read the layer's imago.api: if it did,
     * ServiceLoader would take this JVM's own plug-in (in this module) for a provider of the layer's SPI.
     */
    private static Map<String, String> providers(String service, String nameMethod) throws Exception {
        Class<?> type = layer.findLoader("imago.api").loadClass(SPI + service);
        Module self = ModuleLayerTest.class.getModule();
        self.addUses(type);
        Method name = type.getMethod(nameMethod);
        Map<String, String> found = new TreeMap<>();
        for (ServiceLoader.Provider<?> p : ServiceLoader.load(layer, type).stream().toList()) {
            if (p.type().getModule().getLayer() != layer) {
                continue; // a provider of this JVM's own boot layer, for this JVM's own SPI type
            }
            String key = (String) name.invoke(p.get());
            String previous = found.put(key, p.type().getModule().getName());
            assertEquals(null, previous, "two providers of " + service + " named " + key);
        }
        return found;
    }

    /**
     * Each imago module's {@code META-INF/services} files list exactly what its module-info
     * {@code provides}: class-path users get the same plug-ins as module-path users.
     */
    @Test
    void servicesFilesMatchProvides() throws IOException {
        List<String> problems = new ArrayList<>();
        int checked = 0;
        for (String name : new TreeSet<>(ModuleJars.IMAGO)) {
            ModuleReference ref = ModuleJars.get(name);
            Map<String, Set<String>> provides = new TreeMap<>();
            for (ModuleDescriptor.Provides p : ref.descriptor().provides()) {
                provides.put(p.service(), new TreeSet<>(p.providers()));
            }
            Map<String, Set<String>> files = new TreeMap<>();
            try (ModuleReader reader = ref.open(); Stream<String> entries = reader.list()) {
                for (String entry : entries.filter(e -> e.startsWith("META-INF/services/") && !e.endsWith("/"))
                        .toList()) {
                    try (InputStream in = reader.open(entry).orElseThrow()) {
                        files.put(entry.substring("META-INF/services/".length()), providerNames(name, entry, in,
                                problems));
                    }
                }
            }
            if (name.equals("imago.testkit")) {
                // test support that runs on the class path only: its testkit: storage is listed in META-INF/services
                // alone, since a provides would let surefire's service binding pull it, and JUnit with it, onto
                // the module path of imago.cli's tests (see its module-info)
                assertEquals(Map.of("imago.api.spi.StorageProvider", Set.of("imago.testkit.TestStorageProvider")),
                        files, "imago.testkit's services files");
                assertTrue(provides.isEmpty(), "imago.testkit provides " + provides);
                continue;
            }
            if (!provides.equals(files)) {
                problems.add(name + ": module-info provides " + provides + " but META-INF/services lists " + files);
            }
            checked += provides.size();
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
        assertTrue(checked >= PROVIDER_MODULES.size(), "only " + checked + " provided services were checked");
    }

    /** The provider names of a services file: one per line, {@code #} comments, no duplicates. */
    private static Set<String> providerNames(String module, String entry, InputStream in, List<String> problems)
            throws IOException {
        Set<String> names = new HashSet<>();
        for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
            String n = line.replaceFirst("#.*", "").strip();
            if (!n.isEmpty() && !names.add(n)) {
                problems.add(module + ": " + entry + " lists " + n + " twice");
            }
        }
        return new TreeSet<>(names);
    }
}
