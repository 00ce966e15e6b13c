package imago.luks.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import imago.api.CreateOptions;
import imago.api.Secrets;
import imago.probe.Imago;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bouncy Castle is optional ({@code requires static}): a JVM whose module graph lacks it still creates and opens AES
 * containers, and refuses Serpent, Twofish and CAST5, and the hash RIPEMD-160, by naming what to add, both when asked
 * to create one and when a header names one. Run in a child JVM whose module path holds imago's modules and not
 * Bouncy Castle.
 */
class LuksWithoutBouncyCastleTest {
    private static final String PROGRAM = """
            import imago.api.spi.EncryptionFormat;
            import imago.probe.Imago;
            import java.nio.charset.StandardCharsets;
            import java.nio.file.Path;
            import java.util.Map;
            import java.util.ServiceLoader;

            public class NoBc {
                public static void main(String[] args) {
                    System.out.println("bc " + ModuleLayer.boot().findModule("org.bouncycastle.provider").isPresent());
                    EncryptionFormat luks = ServiceLoader.load(EncryptionFormat.class).stream()
                            .map(ServiceLoader.Provider::get).filter(f -> f.name().equals("luks")).findFirst()
                            .orElseThrow();
                    System.out.println("aes " + luks.headerLength(Map.of("cipher-alg", "aes-256")));
                    try {
                        luks.headerLength(Map.of("cipher-alg", "twofish-128"));
                        System.out.println("create: accepted");
                    } catch (IllegalArgumentException e) {
                        System.out.println("create: " + e.getMessage());
                    }
                    try {
                        luks.headerLength(Map.of("hash-alg", "ripemd160"));
                        System.out.println("create: accepted");
                    } catch (IllegalArgumentException e) {
                        System.out.println("create: " + e.getMessage());
                    }
                    for (String file : args) {
                        try (var image = Imago.opener().path(Path.of(file)).format("luks")
                                .secret("s", "abc".getBytes(StandardCharsets.UTF_8)).option("key-secret", "s").open()) {
                            System.out.println("open: " + image.size());
                        } catch (Exception e) {
                            System.out.println("open: " + e.getClass().getSimpleName() + ": " + e.getMessage());
                        }
                    }
                }
            }
            """;

    @TempDir
    Path dir;

    @Test
    void aesWorksAndTheOthersAreRefusedByName() throws Exception {
        Path aes = create("aes.luks", "aes-256", "sha256");
        Path serpent = create("serpent.luks", "serpent-256", "sha256");
        Path ripemd = create("ripemd.luks", "aes-256", "ripemd160");
        Path source = dir.resolve("NoBc.java");
        Files.writeString(source, PROGRAM);
        String modulePath = String.join(java.io.File.pathSeparator, location("imago.api.spi.EncryptionFormat"),
                location("imago.luks.internal.LuksCipherSpec"), location("imago.probe.Imago"),
                location("imago.storage.file.FileStorageProvider"), location("org.slf4j.Logger"));
        assertFalse(modulePath.contains("bcprov"), modulePath);
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "--enable-native-access=imago.storage.file", "--module-path", modulePath,
                "--add-modules", "imago.luks,imago.probe,imago.storage.file", source.toString(), aes.toString(),
                serpent.toString(), ripemd.toString()));
        Process p = new ProcessBuilder(command).redirectErrorStream(false).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out + err);
        String bc = "needs Bouncy Castle (org.bouncycastle:bcprov-jdk18on, module org.bouncycastle.provider) on the "
                + "module or class path";
        assertEquals(List.of("bc false", "aes " + LuksCreate.payloadSector(LuksCipherSpec.fromOptions(null, null,
                null, null)) * 512, "create: cipher twofish-128 " + bc, "create: hash ripemd160 " + bc,
                "open: 1048576", "open: UnsupportedFeatureException: " + serpent + ": cipher serpent " + bc,
                "open: UnsupportedFeatureException: " + ripemd + ": hash ripemd160 " + bc),
                out.lines().toList(), err);
    }

    private Path create(String name, String alg, String hash) throws IOException {
        Path f = dir.resolve(name);
        Imago.create(f, "luks", CreateOptions.builder().size(1 << 20)
                .secrets(Secrets.create().put("s", "abc".getBytes(StandardCharsets.UTF_8))).option("key-secret", "s")
                .option("iter-time", "10").option("cipher-alg", alg).option("hash-alg", hash).build());
        return f;
    }

    /** Where the class {@code name} was loaded from (its jar or classes directory): main code, never tests'. */
    private static String location(String name) throws ClassNotFoundException, URISyntaxException {
        return Path.of(Class.forName(name).getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }
}
