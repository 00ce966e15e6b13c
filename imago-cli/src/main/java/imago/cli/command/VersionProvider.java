package imago.cli.command;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/** {@code imago --version}: the project version (filtered into a resource at build time) and the JVM's. */
final class VersionProvider implements IVersionProvider {
    VersionProvider() {
    }

    @Override
    public String[] getVersion() throws IOException {
        return new String[] {
            "imago version " + projectVersion(),
            "Java " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")"
        };
    }

    /** imago's version, as the build recorded it ({@code unknown} if it did not). @throws IOException if unreadable */
    static String projectVersion() throws IOException {
        Properties p = new Properties();
        try (InputStream in = VersionProvider.class.getResourceAsStream("/imago/cli/version.properties")) {
            if (in != null) {
                p.load(in);
            }
        }
        return p.getProperty("version", "unknown");
    }
}
