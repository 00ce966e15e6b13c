import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Enumeration;
import java.util.Locale;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.zip.ZipEntry;

/**
 * A build step of imago-cli, run by the JDK's source launcher ({@code java UnsignJars.java DIR}): rewrites every
 * signed jar in {@code DIR} (Bouncy Castle's, in {@code target/lib}) without its signature, as jlink does for
 * the distribution's runtime ({@code --ignore-signing-information}).
 *
 * <p>Why: a JVM that resolves a module from a signed jar verifies the jar's signature, which loads the JDK's
 * X.509, PKCS#7 and RSA code (~200 classes). The training runs of the AOT caches resolve the module path from
 * the jars, so those classes went into both caches, and a JVM loads every class of its cache when it starts,
 * used or not: {@code ./imago info}, which opens no jar at all (the cache holds the module graph), paid for
 * them on every run. imago calls Bouncy Castle's classes directly, not through JCA, which is what would
 * check a provider's signature; an unsigned jar also lets its classes into the caches.
 *
 * <p>What is dropped: the signature files ({@code META-INF/*.SF}, {@code .RSA}, {@code .DSA}, {@code .EC},
 * {@code SIG-*}) and the manifest's per-entry digests; the manifest's main attributes (e.g.
 * {@code Multi-Release}) and every other entry stay as they were, in their order.
 */
public final class UnsignJars {

    private UnsignJars() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: java UnsignJars.java DIR");
            System.exit(2);
        }
        try (DirectoryStream<Path> jars = Files.newDirectoryStream(Path.of(args[0]), "*.jar")) {
            for (Path jar : jars) {
                if (isSigned(jar)) {
                    unsign(jar);
                }
            }
        }
    }

    private static boolean isSigned(Path jar) throws IOException {
        try (JarFile file = new JarFile(jar.toFile(), false)) {
            for (Enumeration<JarEntry> entries = file.entries(); entries.hasMoreElements(); ) {
                if (isSignatureFile(entries.nextElement().getName())) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The files {@code JarFile} takes for a signature: directly in {@code META-INF}, by suffix or prefix. */
    private static boolean isSignatureFile(String name) {
        String upper = name.toUpperCase(Locale.ROOT);
        if (!upper.startsWith("META-INF/") || upper.indexOf('/', "META-INF/".length()) >= 0) {
            return false;
        }
        String file = upper.substring("META-INF/".length());
        return file.endsWith(".SF") || file.endsWith(".RSA") || file.endsWith(".DSA") || file.endsWith(".EC")
                || file.startsWith("SIG-");
    }

    private static void unsign(Path jar) throws IOException {
        Path unsigned = jar.resolveSibling(jar.getFileName() + ".unsigned");
        try (JarFile in = new JarFile(jar.toFile(), false);
                OutputStream file = Files.newOutputStream(unsigned);
                JarOutputStream out = new JarOutputStream(file)) {
            for (Enumeration<JarEntry> entries = in.entries(); entries.hasMoreElements(); ) {
                JarEntry entry = entries.nextElement();
                String name = entry.getName();
                if (isSignatureFile(name)) {
                    continue;
                }
                ZipEntry copy = new ZipEntry(name);
                copy.setTime(entry.getTime());
                out.putNextEntry(copy);
                if (name.equalsIgnoreCase(JarFile.MANIFEST_NAME)) {
                    Manifest main = new Manifest();
                    main.getMainAttributes().putAll(in.getManifest().getMainAttributes());
                    main.write(out);
                } else {
                    try (InputStream data = in.getInputStream(entry)) {
                        data.transferTo(out);
                    }
                }
                out.closeEntry();
            }
        }
        Files.move(unsigned, jar, StandardCopyOption.REPLACE_EXISTING);
        System.out.println("imago-cli: " + jar.getFileName() + " in " + jar.getParent() + " without its signature");
    }
}
